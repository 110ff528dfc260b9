import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  CURSOR_MAX_MS,
  CURSOR_MIN_MS,
  decodeAddedCursor,
  decodeCursor,
  encodeAddedCursor,
  encodeCursor,
  MAX_ADDED_POSITION,
} from '../src/domain/cursor.js';

/** The cursor as it was first defined: base64url of `metric:` and the epoch milliseconds. */
const plainCursor = (ms: number) => Buffer.from(`metric:${ms}`).toString('base64url');
const DATE_RANGE_MS = 8.64e15;

describe('page cursors', () => {
  it('are the same bytes as base64url of metric:<epoch ms>, for any instant a Date holds', () => {
    fc.assert(
      fc.property(fc.integer({ min: -DATE_RANGE_MS, max: DATE_RANGE_MS }), (ms) => {
        expect(encodeCursor(new Date(ms))).toBe(plainCursor(ms));
      }),
      { numRuns: 2000 },
    );
  });

  it('are exact where the milliseconds change their number of digits and around zero', () => {
    const edges = [0, 1, -1, 999_999_999, 1e9, 1e9 + 1, -1e9, -1e9 - 1, 1e12 - 1, 1e12, 1_768_125_600_000];
    const signed = [...edges, ...edges.map((ms) => -ms), DATE_RANGE_MS, -DATE_RANGE_MS];
    expect(signed.map((ms) => encodeCursor(new Date(ms)))).toEqual(signed.map(plainCursor));
  });

  it('decode to the instant they were made from, for any instant PostgreSQL and a Date both hold', () => {
    fc.assert(
      fc.property(fc.integer({ min: CURSOR_MIN_MS, max: CURSOR_MAX_MS }), (ms) => {
        expect(decodeCursor(encodeCursor(new Date(ms)))?.getTime()).toBe(ms);
      }),
      { numRuns: 500 },
    );
    expect(decodeCursor(plainCursor(CURSOR_MIN_MS))?.getTime()).toBe(CURSOR_MIN_MS);
    expect(new Date(CURSOR_MIN_MS).toISOString()).toBe('-004713-11-24T00:00:00.000Z');
  });

  it('name no instant before timestamptz begins (4714-11-24 BC) or past what a Date holds', () => {
    const outside = fc.oneof(
      fc.integer({ min: Number.MIN_SAFE_INTEGER, max: CURSOR_MIN_MS - 1 }),
      fc.integer({ min: CURSOR_MAX_MS + 1, max: Number.MAX_SAFE_INTEGER }),
    );
    fc.assert(
      fc.property(outside, (ms) => {
        expect(decodeCursor(plainCursor(ms))).toBeUndefined();
      }),
      { numRuns: 1000 },
    );
    expect(decodeCursor(plainCursor(-210_866_803_200_001))).toBeUndefined();
  });
});

describe('added-sample cursors', () => {
  const plainAdded = (position: string) => Buffer.from(`added:${position}`).toString('base64url');

  it('decode to the position they were made from, for every bigint id', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: MAX_ADDED_POSITION }), (id) => {
        expect(decodeAddedCursor(encodeAddedCursor(id))).toBe(id);
      }),
      { numRuns: 1000 },
    );
    expect(decodeAddedCursor(plainAdded('9223372036854775807'))).toBe(MAX_ADDED_POSITION);
  });

  it('name no position past the largest bigint, nor anything but digits', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: MAX_ADDED_POSITION + 1n, max: 10n ** 19n - 1n }), (id) => {
        expect(decodeAddedCursor(plainAdded(String(id)))).toBeUndefined();
      }),
      { numRuns: 1000 },
    );
    for (const text of [
      '9999999999999999999',
      '9223372036854775808',
      '-1',
      '1e3',
      ' 1',
      '',
      '1'.repeat(20),
    ]) {
      expect(decodeAddedCursor(plainAdded(text))).toBeUndefined();
    }
  });
});
