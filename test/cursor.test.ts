import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeCursor, encodeCursor } from '../src/domain/cursor.js';

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

  it('decode to the instant they were made from', () => {
    fc.assert(
      fc.property(fc.integer({ min: -DATE_RANGE_MS, max: DATE_RANGE_MS }), (ms) => {
        expect(decodeCursor(encodeCursor(new Date(ms)))?.getTime()).toBe(ms);
      }),
      { numRuns: 500 },
    );
  });
});
