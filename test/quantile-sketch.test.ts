// The sketch's math against exact answers: bucket bounds, merging, and percentiles within the
// stated relative error of percentile_cont.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  bucketValues,
  keyAtRank,
  mergeSketches,
  representativeValue,
  SKETCH_RELATIVE_ACCURACY,
  sketchCount,
  sketchKey,
  sketchOf,
  sketchQuantile,
} from '../src/domain/quantile-sketch.js';

/** percentile_cont: linear interpolation between the values at ranks floor and ceil of f·(n-1). */
function percentileCont(values: readonly number[], fraction: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  const rank = fraction * (sorted.length - 1);
  const below = Math.floor(rank);
  const lower = sorted[below] as number;
  const upper = sorted[Math.min(below + 1, sorted.length - 1)] as number;
  return lower + (upper - lower) * (rank - below);
}

// Floating-point rounding in log() and pow() on top of the bound itself.
const ROUNDING = 1e-12;

/** Non-negative float4 values (what cpu_load holds), zero included, over many orders of magnitude. */
const value = fc.oneof(
  fc.constant(0),
  fc.float({ min: Math.fround(1e-30), max: Math.fround(1e30), noNaN: true, noDefaultInfinity: true }),
  fc.integer({ min: 0, max: 10_000 }),
  fc.double({ min: 0, max: 100, noNaN: true }).map(Math.fround),
);

describe('quantile sketch', () => {
  it('represents every value within the relative accuracy, zero exactly', () => {
    fc.assert(
      fc.property(value, (x) => {
        const representative = representativeValue(sketchKey(x));
        expect(Math.abs(representative - x)).toBeLessThanOrEqual((SKETCH_RELATIVE_ACCURACY + ROUNDING) * x);
      }),
      { numRuns: 2000 },
    );
  });

  it('merges to the sketch of all the values', () => {
    fc.assert(
      fc.property(fc.array(value), fc.array(value), (a, b) => {
        expect(mergeSketches(sketchOf(a), sketchOf(b))).toEqual(sketchOf([...a, ...b]));
        expect(sketchCount(sketchOf(a))).toBe(a.length);
      }),
    );
  });

  it('gives each percentile within the relative accuracy of percentile_cont over the values', () => {
    fc.assert(
      fc.property(
        fc.array(value, { minLength: 1, maxLength: 500 }),
        fc.integer({ min: 0, max: 10_000 }).map((basisPoints) => basisPoints / 10_000),
        (values, fraction) => {
          const exact = percentileCont(values, fraction);
          const estimate = sketchQuantile(sketchOf(values), fraction) as number;
          expect(Math.abs(estimate - exact)).toBeLessThanOrEqual(
            (SKETCH_RELATIVE_ACCURACY + ROUNDING) * exact,
          );
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('has no percentile when empty and refuses values the columns cannot hold', () => {
    expect(sketchQuantile(sketchOf([]), 0.5)).toBeNull();
    expect(() => sketchKey(-1)).toThrow(RangeError);
    expect(() => sketchKey(Number.NaN)).toThrow(RangeError);
    expect(() => sketchKey(Number.POSITIVE_INFINITY)).toThrow(RangeError);
  });
});

describe('locating a rank', () => {
  it("names the bucket holding the value at every rank, and that bucket's values include it", () => {
    fc.assert(
      fc.property(
        fc.array(fc.oneof(fc.constant(0), fc.float({ min: Math.fround(1e-6), max: 1e6, noNaN: true })), {
          minLength: 1,
          maxLength: 300,
        }),
        (values) => {
          const sketch = sketchOf(values);
          const sorted = [...values].sort((a, b) => a - b);
          sorted.forEach((value, rank) => {
            const key = keyAtRank(sketch, rank);
            expect(key === sketchKey(value)).toBe(true);
            const { above, upTo } = bucketValues(key);
            expect(value > above && value <= upTo).toBe(true);
          });
          expect(() => keyAtRank(sketch, values.length)).toThrow(RangeError);
        },
      ),
    );
  });
});
