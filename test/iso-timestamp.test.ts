import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isoTimestamp, MAX_TIMESTAMP_MS, MIN_TIMESTAMP_MS } from '../src/domain/time.js';

describe('isoTimestamp', () => {
  it('writes what Date#toISOString writes, for any instant the service stores, in any order', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: MIN_TIMESTAMP_MS, max: MAX_TIMESTAMP_MS }), {
          minLength: 1,
          maxLength: 50,
        }),
        (instants) => {
          for (const ms of instants) expect(isoTimestamp(new Date(ms))).toBe(new Date(ms).toISOString());
        },
      ),
      { numRuns: 500 },
    );
  });

  it('is exact at the edges of hours, days, leap days and the range, back and forth', () => {
    const edges = [
      MIN_TIMESTAMP_MS,
      MAX_TIMESTAMP_MS,
      Date.UTC(2026, 0, 6, 12, 59, 59, 999),
      Date.UTC(2026, 0, 6, 13),
      Date.UTC(2024, 1, 29, 23, 59, 59, 999),
      Date.UTC(2024, 2, 1),
      Date.UTC(2026, 0, 6, 12, 59, 59, 999),
      Date.UTC(1999, 11, 31, 23, 59, 59, 999),
    ];
    expect(edges.map((ms) => isoTimestamp(new Date(ms)))).toEqual(
      edges.map((ms) => new Date(ms).toISOString()),
    );
  });

  it('leaves instants outside four-digit years to Date, extended years included', () => {
    for (const ms of [-1, -62_198_755_200_000, MAX_TIMESTAMP_MS + 1, 8.64e15]) {
      expect(isoTimestamp(new Date(ms))).toBe(new Date(ms).toISOString());
    }
    expect(() => isoTimestamp(new Date(Number.NaN))).toThrow(RangeError);
  });
});
