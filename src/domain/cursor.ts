/**
 * Opaque page cursors. A cursor is the timestamp of the row it points at: timestamps are unique,
 * so "rows after this cursor" is a range on the timestamp index however deep the page is.
 */
import { epochMillisecondsText } from './time.js';

const PREFIX = 'metric:';

export function encodeCursor(timestamp: Date): string {
  return Buffer.from(`${PREFIX}${epochMillisecondsText(timestamp)}`).toString('base64url');
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

/**
 * Cursors of the live stream of added samples: the id of the sample an event carried, which is
 * its position in commit order (see live/change-feed.ts), not its time.
 */
const ADDED_PREFIX = 'added:';

export function encodeAddedCursor(id: bigint): string {
  return Buffer.from(`${ADDED_PREFIX}${id}`).toString('base64url');
}

/** The position an added-sample cursor names, or undefined when it is not one this service issued. */
export function decodeAddedCursor(cursor: string): bigint | undefined {
  if (!/^[A-Za-z0-9_-]+$/.test(cursor)) return undefined;
  const text = Buffer.from(cursor, 'base64url').toString();
  if (!text.startsWith(ADDED_PREFIX)) return undefined;
  const id = text.slice(ADDED_PREFIX.length);
  return /^\d{1,19}$/.test(id) ? BigInt(id) : undefined;
}
