/**
 * Opaque page cursors. A cursor is the timestamp of the row it points at: timestamps are unique,
 * so "rows after this cursor" is a range on the timestamp index however deep the page is.
 */
import { epochMillisecondsText } from './time.js';

const PREFIX = 'metric:';

/**
 * The instants a page cursor may name: those PostgreSQL's timestamptz holds (from 4714-11-24 BC)
 * that a Date holds too (up to +275760-09-13; timestamptz goes on to 294276 AD). A row can only
 * have a timestamp in there, and a forged cursor outside it would make the page's statement fail.
 */
export const CURSOR_MIN_MS = Date.UTC(-4713, 10, 24);
export const CURSOR_MAX_MS = 8.64e15;

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
  const epochMs = Number(ms);
  return epochMs >= CURSOR_MIN_MS && epochMs <= CURSOR_MAX_MS ? new Date(epochMs) : undefined;
}

/**
 * Cursors of the live stream of added samples: the id of the sample an event carried, which is
 * its position in commit order (see live/change-feed.ts), not its time.
 */
const ADDED_PREFIX = 'added:';
/** Ids are PostgreSQL bigints: a position past the largest one cannot be read after. */
export const MAX_ADDED_POSITION = 2n ** 63n - 1n;

export function encodeAddedCursor(id: bigint): string {
  return Buffer.from(`${ADDED_PREFIX}${id}`).toString('base64url');
}

/** The position an added-sample cursor names, or undefined when it is not one this service issued. */
export function decodeAddedCursor(cursor: string): bigint | undefined {
  if (!/^[A-Za-z0-9_-]+$/.test(cursor)) return undefined;
  const text = Buffer.from(cursor, 'base64url').toString();
  if (!text.startsWith(ADDED_PREFIX)) return undefined;
  const id = text.slice(ADDED_PREFIX.length);
  if (!/^\d{1,19}$/.test(id)) return undefined;
  const position = BigInt(id);
  return position <= MAX_ADDED_POSITION ? position : undefined;
}
