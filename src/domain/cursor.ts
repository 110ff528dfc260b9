/**
 * Opaque page cursors. A cursor is the position of the row it points at, its timestamp and its
 * source: (source, timestamp) is unique, so "rows after this cursor" is a range of the (timestamp,
 * source_id) index, or of one source's (source_id, timestamp) index, however deep the page is.
 */
import type { PagePosition, SourcePosition } from './paging.js';
import { MAX_SOURCE_NAME_LENGTH } from './source.js';
import { epochMillisecondsText } from './time.js';

const PREFIX = 'metric:';
/** A cursor's text: the prefix, epoch milliseconds, and a source id unless it is source 1. */
const CURSOR_TEXT = new RegExp(`^${PREFIX}(-?\\d{1,16})(?::([1-9]\\d{0,9}))?$`);

/**
 * The source of a cursor written with its timestamp alone: cursors issued before sources existed
 * name a row of the one series there was, which the sources migration made source 1. A position in
 * source 1 is still written that way, so the cursors of a database with one source are the bytes
 * they always were.
 */
const UNNAMED_SOURCE_ID = 1;
/** Source ids are PostgreSQL integers (a serial). */
const MAX_SOURCE_ID = 2 ** 31 - 1;

/**
 * The instants a page cursor may name: those PostgreSQL's timestamptz holds (from 4714-11-24 BC)
 * that a Date holds too (up to +275760-09-13; timestamptz goes on to 294276 AD). A row can only
 * have a timestamp in there, and a forged cursor outside it would make the page's statement fail.
 */
export const CURSOR_MIN_MS = Date.UTC(-4713, 10, 24);
export const CURSOR_MAX_MS = 8.64e15;

/** `metric:<epoch ms>` for a row of source 1, `metric:<epoch ms>:<source id>` for any other, in base64url. */
export function encodeCursor({ timestamp, sourceId }: PagePosition): string {
  const ms = epochMillisecondsText(timestamp);
  const text = sourceId === UNNAMED_SOURCE_ID ? `${PREFIX}${ms}` : `${PREFIX}${ms}:${sourceId}`;
  return Buffer.from(text).toString('base64url');
}

/** The cursor's position, or undefined when it is not a cursor this service issued. */
export function decodeCursor(cursor: string): PagePosition | undefined {
  if (!/^[A-Za-z0-9_-]+$/.test(cursor)) return undefined;
  const text = Buffer.from(cursor, 'base64url').toString();
  const parts = CURSOR_TEXT.exec(text);
  if (!parts) return undefined;
  const epochMs = Number(parts[1]);
  const sourceId = parts[2] === undefined ? UNNAMED_SOURCE_ID : Number(parts[2]);
  if (epochMs < CURSOR_MIN_MS || epochMs > CURSOR_MAX_MS || sourceId > MAX_SOURCE_ID) return undefined;
  return { timestamp: new Date(epochMs), sourceId };
}

/**
 * Cursors of a page of sources: `source-name:<name>` in the order of names, and
 * `source-seen:<epoch ms, empty if never seen>:<id>` in the order of last seen. A cursor of one
 * order names no place in the other.
 */
const SOURCE_NAME_PREFIX = 'source-name:';
const SOURCE_SEEN_TEXT = /^source-seen:(-?\d{1,16})?:([1-9]\d{0,9})$/;

export function encodeSourceCursor(position: SourcePosition): string {
  const text =
    position.order === 'name'
      ? `${SOURCE_NAME_PREFIX}${position.name}`
      : `source-seen:${position.lastSeen ? epochMillisecondsText(position.lastSeen) : ''}:${position.id}`;
  return Buffer.from(text).toString('base64url');
}

/** The position a sources cursor names, or undefined when it is not one this service issued. */
export function decodeSourceCursor(cursor: string): SourcePosition | undefined {
  if (!/^[A-Za-z0-9_-]+$/.test(cursor)) return undefined;
  const text = Buffer.from(cursor, 'base64url').toString();
  if (text.startsWith(SOURCE_NAME_PREFIX)) {
    const name = text.slice(SOURCE_NAME_PREFIX.length);
    return name.length > 0 && name.length <= MAX_SOURCE_NAME_LENGTH ? { order: 'name', name } : undefined;
  }
  const parts = SOURCE_SEEN_TEXT.exec(text);
  if (!parts) return undefined;
  const epochMs = parts[1] === undefined ? undefined : Number(parts[1]);
  const id = Number(parts[2]);
  if (id > MAX_SOURCE_ID) return undefined;
  if (epochMs !== undefined && (epochMs < CURSOR_MIN_MS || epochMs > CURSOR_MAX_MS)) return undefined;
  return { order: 'lastSeen', lastSeen: epochMs === undefined ? null : new Date(epochMs), id };
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
