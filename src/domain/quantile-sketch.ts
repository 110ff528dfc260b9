/**
 * The percentile sketch the rollups keep per column: DDSketch's log-bucketed histogram
 * (Masson, Rim & Lee, VLDB 2019). A positive value x counts in the bucket with key
 * ceil(log_gamma(x)), which holds (gamma^(key-1), gamma^key]; the bucket's representative value
 * 2·gamma^key / (gamma + 1) is within ALPHA of every value in it, relatively. Zero counts under a
 * key of its own. The columns are non-negative (CHECK constraints), so there are no negatives.
 * The same key function runs in SQL (metric_sketch_key in the metrics_rollups migration).
 */

/** Relative accuracy of a sketch's value at a rank. */
export const SKETCH_RELATIVE_ACCURACY = 0.01;
export const SKETCH_GAMMA = (1 + SKETCH_RELATIVE_ACCURACY) / (1 - SKETCH_RELATIVE_ACCURACY);
/** Below every key of a positive float4 (the smallest, 1.4e-45, has key -5,160). */
export const ZERO_KEY = -32768;

const LOG_GAMMA = Math.log(SKETCH_GAMMA);

/** Keys in ascending order, each with how many values it holds. */
export interface QuantileSketch {
  keys: readonly number[];
  counts: readonly number[];
}

export function sketchKey(value: number): number {
  if (!(value >= 0) || !Number.isFinite(value))
    throw new RangeError(`not a finite non-negative value: ${value}`);
  return value === 0 ? ZERO_KEY : Math.ceil(Math.log(value) / LOG_GAMMA);
}

/** The value that stands for every value of the bucket `key`. */
export function representativeValue(key: number): number {
  return key === ZERO_KEY ? 0 : (2 * SKETCH_GAMMA ** key) / (SKETCH_GAMMA + 1);
}

export function sketchOf(values: Iterable<number>): QuantileSketch {
  const counts = new Map<number, number>();
  for (const value of values) {
    const key = sketchKey(value);
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return fromCounts(counts);
}

export function mergeSketches(...sketches: readonly QuantileSketch[]): QuantileSketch {
  const counts = new Map<number, number>();
  for (const { keys, counts: those } of sketches) {
    for (let index = 0; index < keys.length; index++) {
      const key = keys[index] as number;
      counts.set(key, (counts.get(key) ?? 0) + (those[index] ?? 0));
    }
  }
  return fromCounts(counts);
}

function fromCounts(counts: Map<number, number>): QuantileSketch {
  const keys = [...counts.keys()].sort((a, b) => a - b);
  return { keys, counts: keys.map((key) => counts.get(key) ?? 0) };
}

export function sketchCount({ counts }: QuantileSketch): number {
  let total = 0;
  for (const count of counts) total += count;
  return total;
}

/** The representative value of the bucket holding the value of 0-based `rank` in ascending order. */
function valueAtRank({ keys, counts }: QuantileSketch, rank: number): number {
  let seen = 0;
  for (let index = 0; index < keys.length; index++) {
    seen += counts[index] ?? 0;
    if (seen > rank) return representativeValue(keys[index] ?? ZERO_KEY);
  }
  throw new RangeError(`rank ${rank} beyond the sketch's ${seen} values`);
}

/**
 * The `fraction` percentile as percentile_cont computes it from the values, with each value replaced
 * by its bucket's representative: interpolated between the values at ranks floor(f·(n-1)) and
 * ceil(f·(n-1)). Both are within ALPHA of the exact values at those ranks, and so is any weighted
 * mean of them: the result is within ALPHA (relatively) of percentile_cont of the exact values.
 * Null for an empty sketch.
 */
export function sketchQuantile(sketch: QuantileSketch, fraction: number): number | null {
  const total = sketchCount(sketch);
  if (total === 0) return null;
  const { low, high, proportion } = percentileRanks(total, fraction);
  const lower = valueAtRank(sketch, low);
  if (high === low) return lower;
  return interpolate(lower, valueAtRank(sketch, high), proportion);
}

/**
 * The values a bucket holds, widened by a relative hair on both sides so that a value the key
 * function (in SQL or here) rounds across a boundary is still inside: `above` exclusive, `upTo`
 * inclusive. Zero's key holds exactly 0.
 */
function bucketValues(key: number): { above: number; upTo: number } {
  if (key === ZERO_KEY) return { above: -1, upTo: 0 };
  return { above: SKETCH_GAMMA ** (key - 1) * (1 - 1e-9), upTo: SKETCH_GAMMA ** key * (1 + 1e-9) };
}

/** The bucket holding the value of 0-based `rank`, with how many values it holds and how many lie below it. */
function bucketAtRank(
  { keys, counts }: QuantileSketch,
  rank: number,
): { key: number; below: number; count: number } {
  let seen = 0;
  for (let index = 0; index < keys.length; index++) {
    const count = counts[index] ?? 0;
    if (seen + count > rank) return { key: keys[index] ?? ZERO_KEY, below: seen, count };
    seen += count;
  }
  throw new RangeError(`rank ${rank} beyond the sketch's ${seen} values`);
}

/** What an exact selection needs from a scan, and reads off what the scan collected. */
export interface PercentileSelection {
  /** Value ranges (`above` exclusive, `upTo` inclusive): the scan collects every value inside any of them. */
  ranges: { above: number; upTo: number }[];
  /**
   * The percentiles, exactly as percentile_cont gives them over all the values, from the values
   * the scan collected (in any order); undefined when a bucket's collected values are not the
   * ones the sketch counts in it (the sketch does not describe the scanned values). Null each
   * when the sketch is empty, as percentile_cont over no value (a window whose samples all lack
   * this value).
   */
  percentiles(collected: readonly number[]): (number | null)[] | undefined;
}

/**
 * Exact percentiles without sorting every value: the sketch of the values says which bucket
 * holds each rank percentile_cont reads and how many values lie below that bucket, so only the
 * values inside those few buckets (about 1% wide each) need collecting and sorting. A bucket's
 * collected values are accepted only when there are exactly as many as the sketch counts in it:
 * the widened ranges (bucketValues) hold every value of the bucket, so equal counts mean they are
 * the bucket's values and nothing else.
 */
export function percentileSelection(
  sketch: QuantileSketch,
  fractions: readonly number[],
): PercentileSelection {
  const total = sketchCount(sketch);
  if (total === 0) return { ranges: [], percentiles: () => fractions.map(() => null) };
  const wanted = fractions.map((fraction) => percentileRanks(total, fraction));
  const buckets = new Map<number, { below: number; count: number; above: number; upTo: number }>();
  for (const { low, high } of wanted) {
    for (const rank of [low, high]) {
      const { key, below, count } = bucketAtRank(sketch, rank);
      if (!buckets.has(key)) buckets.set(key, { below, count, ...bucketValues(key) });
    }
  }
  return {
    ranges: [...buckets.values()].map(({ above, upTo }) => ({ above, upTo })),
    percentiles(collected) {
      const sorted: { below: number; values: number[] }[] = [];
      for (const { below, count, above, upTo } of buckets.values()) {
        const values = collected.filter((value) => value > above && value <= upTo).sort((a, b) => a - b);
        if (values.length !== count) return undefined;
        sorted.push({ below, values });
      }
      const valueAt = (rank: number): number => {
        const bucket = sorted.find(({ below, values }) => rank >= below && rank < below + values.length);
        return bucket?.values[rank - bucket.below] as number;
      };
      return wanted.map(({ low, high, proportion }) =>
        high === low ? valueAt(low) : interpolate(valueAt(low), valueAt(high), proportion),
      );
    },
  };
}

/**
 * The 0-based ranks percentile_cont reads for `fraction` of `total` values, and how far between
 * them it interpolates (PostgreSQL's percentile_cont_final_common).
 */
export function percentileRanks(
  total: number,
  fraction: number,
): { low: number; high: number; proportion: number } {
  const position = fraction * (total - 1);
  const low = Math.floor(position);
  return { low, high: Math.ceil(position), proportion: position - low };
}

/** percentile_cont's interpolation, as PostgreSQL computes it (float8_lerp). */
export function interpolate(low: number, high: number, proportion: number): number {
  return low + proportion * (high - low);
}

/**
 * A sketch's tail, as the rollups keep it for each merged hour and day (the migration
 * rollup_sketch_tails): [count, key, above, key, above, ...], keys ascending, `above` how many of
 * the values lie in buckets past `key`, the last `above` 0.
 */
export type SketchTail = readonly number[];

/**
 * A value that sketchQuantile(fraction) of the merged sketch of `count` values cannot exceed,
 * knowing only the tails of pieces those values lie in (a piece may hold more values than the
 * window, as an hour a window only partly covers): the percentile reads the values at ranks up to
 * ceil(fraction·(count-1)), so it is at most the representative of the first key past which at
 * most count-1-that rank values can lie, by the tails' sum. Null when there is no such key.
 */
export function quantileUpperBound(
  tails: readonly SketchTail[],
  count: number,
  fraction: number,
): number | null {
  if (count === 0) return null;
  const { high } = percentileRanks(count, fraction);
  const allowed = count - 1 - high;
  let above = 0;
  const steps: { key: number; change: number }[] = [];
  for (const tail of tails) {
    let previous = tail[0] ?? 0;
    above += previous;
    for (let index = 1; index + 1 < tail.length; index += 2) {
      const next = tail[index + 1] as number;
      steps.push({ key: tail[index] as number, change: next - previous });
      previous = next;
    }
  }
  steps.sort((a, b) => a.key - b.key);
  for (let index = 0; index < steps.length; ) {
    const key = (steps[index] as { key: number }).key;
    for (; index < steps.length && (steps[index] as { key: number }).key === key; index++)
      above += (steps[index] as { change: number }).change;
    if (above <= allowed) return representativeValue(key);
  }
  return null;
}
