/**
 * Opaque page cursors. A cursor is the timestamp of the row it points at: timestamps are unique,
 * so "rows after this cursor" is a range on the timestamp index however deep the page is.
 */
const PREFIX = 'metric:';

export function encodeCursor(timestamp: Date): string {
  return Buffer.from(`${PREFIX}${timestamp.getTime()}`).toString('base64url');
}

/** The cursor's timestamp, or undefined when it is not a cursor this service issued. */
export function decodeCursor(cursor: string): Date | undefined {
  if (!/^[A-Za-z0-9_-]+$/.test(cursor)) return undefined;
  const text = Buffer.from(cursor, 'base64url').toString();
  if (!text.startsWith(PREFIX)) return undefined;
  const ms = text.slice(PREFIX.length);
  if (!/^-?\d{1,16}$/.test(ms)) return undefined;
  const date = new Date(Number(ms));
  return Number.isNaN(date.getTime()) ? undefined : date;
}
