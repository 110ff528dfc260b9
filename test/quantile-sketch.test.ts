// The sketch's math against exact answers: bucket bounds, merging, and percentiles within the
// stated relative error of percentile_cont.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  mergeSketches,
  percentileSelection,
  quantileUpperBound,
  representativeValue,
  SKETCH_RELATIVE_ACCURACY,
  sketchCount,
  sketchKey,
  sketchOf,
  sketchQuantile,
} from '../src/domain/quantile-sketch.js';
import { sketchTail } from './support/sketch-tail.js';

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

describe('exact percentiles by selection', () => {
  const fractions = [0, 0.5, 0.95, 0.99, 1];
  const values = fc.array(
    fc.oneof(
      fc.constant(0),
      fc.integer({ min: 0, max: 200 }),
      fc.float({ min: Math.fround(1e-6), max: 1e6, noNaN: true }),
    ),
    { minLength: 1, maxLength: 400 },
  );

  it("reads percentile_cont's exact answer off the values inside the buckets holding its ranks", () => {
    fc.assert(
      fc.property(values, (all) => {
        const selection = percentileSelection(sketchOf(all), fractions);
        const collected = all.filter((value) =>
          selection.ranges.some(({ above, upTo }) => value > above && value <= upTo),
        );
        expect(selection.percentiles(collected)).toEqual(fractions.map((f) => percentileCont(all, f)));
        // Every value, in any order, gives the same: values outside the ranges are ignored.
        expect(selection.percentiles([...all].reverse())).toEqual(selection.percentiles(collected));
      }),
    );
  });

  it('refuses collected values the sketch does not count', () => {
    fc.assert(
      fc.property(values, fc.nat(), (all, pick) => {
        const selection = percentileSelection(sketchOf(all), fractions);
        const collected = all.filter((value) =>
          selection.ranges.some(({ above, upTo }) => value > above && value <= upTo),
        );
        const missing = collected.toSpliced(pick % collected.length, 1);
        expect(selection.percentiles(missing)).toBeUndefined();
        const extra = [...collected, collected[pick % collected.length] as number];
        expect(selection.percentiles(extra)).toBeUndefined();
      }),
    );
  });

  it('bounds a percentile from above by the tails of pieces holding the values, or their maxima', () => {
    const fraction = fc.constantFrom(0, 0.5, 0.95, 0.99, 1);
    fc.assert(
      fc.property(
        fc.array(fc.tuple(value, fc.nat(5), fc.boolean()), { minLength: 1, maxLength: 400 }),
        fc.array(fc.boolean(), { minLength: 6, maxLength: 6 }),
        fraction,
        (samples, maxOnly, f) => {
          // Each value in one of six pieces; a piece may also hold values outside the window.
          const pieces = Array.from({ length: 6 }, () => [] as number[]);
          for (const [x, piece] of samples) pieces[piece]?.push(x);
          const window = samples.filter(([, , inWindow]) => inWindow).map(([x]) => x);
          const tails = pieces
            .filter((piece) => piece.length > 0)
            .map((piece, index) =>
              maxOnly[index] ? [piece.length, sketchKey(Math.max(...piece)), 0] : sketchTail(sketchOf(piece)),
            );
          const bound = quantileUpperBound(tails, window.length, f);
          if (window.length === 0) {
            expect(bound).toBeNull();
            return;
          }
          expect(bound).not.toBeNull();
          expect(sketchQuantile(sketchOf(window), f)).toBeLessThanOrEqual(bound as number);
          expect(bound).toBeLessThanOrEqual(
            representativeValue(sketchKey(Math.max(...samples.map(([x]) => x)))),
          );
        },
      ),
      { numRuns: 500 },
    );
  });

  it("bounds a day's p95 near its peak hours', not at its maximum", () => {
    // 24 hours of 360 values; hour h around h/4, one spike of 50 in each hour.
    const hours = Array.from({ length: 24 }, (_, h) =>
      Array.from({ length: 360 }, (_, i) => (i === 0 ? 50 : h / 4 + (i % 10) / 100)),
    );
    const all = hours.flat();
    const bound = quantileUpperBound(
      hours.map((hour) => sketchTail(sketchOf(hour))),
      all.length,
      0.95,
    );
    const p95 = sketchQuantile(sketchOf(all), 0.95) as number;
    expect(bound).toBeGreaterThanOrEqual(p95);
    expect(bound).toBeLessThan(6);
  });
});
