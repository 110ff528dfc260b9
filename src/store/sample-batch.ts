import type { MetricSample } from '../domain/sample.js';
import type { BatchCounts, ConflictMode } from '../domain/writes.js';

export interface BatchResult extends BatchCounts {
  /** Ids of the rows this batch inserted, ascending (input order), when asked for. */
  ids: string[];
}

/** Where batches are written: the store, or the store within one transaction. */
export interface BatchTarget {
  writeBatch(batch: Batch, mode: ConflictMode, wantIds: boolean): Promise<BatchResult>;
}

/**
 * A batch held column by column in typed arrays: a batch lives long enough to outlast the young
 * generation, and a million small sample objects promoted to the old one is what made the heap
 * (and the resident set) grow with the input size.
 */
export class Batch {
  readonly timestamps: Float64Array;
  readonly loads: Float64Array;
  readonly concurrencies: Int32Array;
  length = 0;

  constructor(readonly capacity: number) {
    this.timestamps = new Float64Array(capacity);
    this.loads = new Float64Array(capacity);
    this.concurrencies = new Int32Array(capacity);
  }

  push(timestampMs: number, cpuLoad: number, concurrency: number): void {
    const i = this.length++;
    this.timestamps[i] = timestampMs;
    this.loads[i] = forReal(cpuLoad);
    this.concurrencies[i] = concurrency;
  }

  static of(samples: readonly MetricSample[]): Batch {
    const batch = new Batch(Math.max(1, samples.length));
    for (const s of samples) batch.push(s.timestampMs, s.cpuLoad, s.concurrency);
    return batch;
  }
}

const FLOAT4_MIN_NORMAL = 1.1754943508222875e-38;
const FLOAT4_NEAR_MAX = 3.4e38;

/**
 * The value to send for a `real` column. Postgres parses the decimal text itself and refuses what
 * would underflow to zero ("out of range for type real"), so values at the edges of float4 are sent
 * already rounded to float4; everything else is sent as written, which keeps the text short.
 */
function forReal(value: number): number {
  const rounded = Math.fround(value);
  return rounded === 0 || rounded < FLOAT4_MIN_NORMAL || rounded > FLOAT4_NEAR_MAX ? rounded : value;
}

/**
 * Keeps one row per timestamp: the first for `skip`, the last for `update`, matching what the
 * database does with a timestamp that is already stored. Postgres refuses an ON CONFLICT DO UPDATE
 * that would touch the same row twice in one statement, so this is required, not an optimisation.
 * Returns the batch itself when its timestamps are strictly increasing, the usual case.
 */
export function dedupe(batch: Batch, mode: ConflictMode): Batch {
  const { timestamps, length } = batch;
  let increasing = true;
  for (let i = 1; i < length && increasing; i++)
    increasing = (timestamps[i] as number) > (timestamps[i - 1] as number);
  if (increasing) return batch;
  const keep = new Map<number, number>();
  for (let i = 0; i < length; i++) {
    const key = timestamps[i] as number;
    if (mode === 'update' || !keep.has(key)) keep.set(key, i);
  }
  if (keep.size === length) return batch;
  const unique = new Batch(keep.size);
  for (const i of keep.values()) {
    const at = unique.length++;
    unique.timestamps[at] = timestamps[i] as number;
    unique.loads[at] = batch.loads[i] as number;
    unique.concurrencies[at] = batch.concurrencies[i] as number;
  }
  return unique;
}
