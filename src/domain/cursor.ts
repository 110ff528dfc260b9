/**
 * Opaque page cursors. A cursor is the timestamp of the row it points at: timestamps are unique,
 * so "rows after this cursor" is a range on the timestamp index however deep the page is.
 */
const PREFIX = 'metric:';

export function encodeCursor(timestamp: Date): string {
  return Buffer.from(`${PREFIX}${millisecondsText(timestamp.getTime())}`).toString('base64url');
}

/**
 * `String(ms)`, written from two parts below 1e9. V8 caches the text of a number outside the
 * small-integer range (epoch milliseconds are outside it) in the old generation: a page of 100
 * cursors left 3.3 KB there per request, which under load meant a mark-compact of the whole heap
 * every second or two and the tail latency that came with it (bench/PROFILE.md). Small integers'
 * text is made in the young generation and dies there.
 */
function millisecondsText(ms: number): string {
  const magnitude = Math.abs(ms);
  if (!(magnitude >= 1e9)) return String(ms);
  const high = Math.floor(magnitude / 1e9);
  const low = magnitude - high * 1e9;
  return `${ms < 0 ? '-' : ''}${high}${String(low).padStart(9, '0')}`;
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
