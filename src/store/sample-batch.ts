import type { MetricSample, Problem } from '../domain/sample.js';
import type { SourceLabels } from '../domain/source.js';
import type { BatchCounts, ConflictMode } from '../domain/writes.js';

/** A row of a batch refused as it was written (its source may not be made), named by its origin. */
export interface RefusedRow {
  origin: number;
  problem: Problem;
}

export interface BatchResult extends BatchCounts {
  /** Ids of the rows this batch inserted, ascending (input order), when asked for. */
  ids: string[];
  /** Rows not written because their source was refused (MAX_SOURCES); they count as none of the above. */
  refused: RefusedRow[];
}

/** Where batches are written: the store, or the store within one transaction. */
export interface BatchTarget {
  writeBatch(batch: Batch, mode: ConflictMode, wantIds: boolean): Promise<BatchResult>;
}

/** A source a batch's rows name: its name, and the labels the last of its rows gave (undefined: none). */
export interface BatchSource {
  name: string;
  labels: SourceLabels | undefined;
}

/** The source index of a row whose writer named no source: the default source, written as id 1 with no lookup. */
export const DEFAULT_SOURCE_ROW = -1;
export const DEFAULT_SOURCE_ID = 1;

/** How a missing value is held in the typed arrays: a CPU load is never NaN, a concurrency never negative. */
const NO_LOAD = Number.NaN;
const NO_CONCURRENCY = -1;
export const isMissingLoad = (load: number): boolean => Number.isNaN(load);
export const isMissingConcurrency = (concurrency: number): boolean => concurrency < 0;

/**
 * A batch held column by column in typed arrays: a batch lives long enough to outlast the young
 * generation, and a million small sample objects promoted to the old one is what made the heap
 * (and the resident set) grow with the input size. Sources are a dictionary of the batch's own (a
 * few names, each once) and an index per row; the store resolves each name to its id once a batch.
 */
export class Batch {
  readonly timestamps: Float64Array;
  /** NaN where the sample has no CPU load. */
  readonly loads: Float64Array;
  /** -1 where the sample has no concurrency. */
  readonly concurrencies: Int32Array;
  /** Each row's index in `sources`, or DEFAULT_SOURCE_ROW. */
  readonly sourceIndexes: Int32Array;
  /** Each row's source id: filled by the store as it writes the batch. */
  readonly sourceIds: Int32Array;
  /** The writer's own number for each row (an input's line, a list's index), to name a refused row. */
  readonly origins: Float64Array;
  /** The sources the rows name, each once, in order of first appearance. */
  readonly sources: BatchSource[] = [];
  readonly #indexOf = new Map<string, number>();
  length = 0;

  constructor(readonly capacity: number) {
    this.timestamps = new Float64Array(capacity);
    this.loads = new Float64Array(capacity);
    this.concurrencies = new Int32Array(capacity);
    this.sourceIndexes = new Int32Array(capacity);
    this.sourceIds = new Int32Array(capacity);
    this.origins = new Float64Array(capacity);
  }

  /** Adds a row; `source` from source(), the default source when left out; `origin` the row's position unless given. */
  push(
    timestampMs: number,
    cpuLoad: number | null,
    concurrency: number | null,
    source = DEFAULT_SOURCE_ROW,
    origin = this.length,
  ): void {
    // A typed array ignores a write past its end: a row past the capacity would be lost unseen.
    if (this.length === this.capacity) throw new RangeError(`a batch of ${this.capacity} rows is full`);
    const i = this.length++;
    this.timestamps[i] = timestampMs;
    this.loads[i] = cpuLoad === null ? NO_LOAD : forReal(cpuLoad);
    this.concurrencies[i] = concurrency ?? NO_CONCURRENCY;
    this.sourceIndexes[i] = source;
    this.origins[i] = origin;
  }

  /** Adds a sample, with its source (the default source when it names none). */
  add(sample: MetricSample, origin = this.length): void {
    const source =
      sample.source === undefined ? DEFAULT_SOURCE_ROW : this.source(sample.source, sample.labels);
    this.push(sample.timestampMs, sample.cpuLoad, sample.concurrency, source, origin);
  }

  /** Adds the rows of `other`, with their sources; each row's origin is its place in this batch. */
  append(other: Batch): void {
    if (this.length + other.length > this.capacity)
      throw new RangeError(`a batch of ${this.capacity} rows cannot take ${other.length} more`);
    const indexes = other.sources.map(({ name, labels }) => this.source(name, labels));
    for (let i = 0; i < other.length; i++) {
      const at = this.length++;
      const index = other.sourceIndexes[i] as number;
      this.timestamps[at] = other.timestamps[i] as number;
      this.loads[at] = other.loads[i] as number;
      this.concurrencies[at] = other.concurrencies[i] as number;
      this.sourceIndexes[at] = index === DEFAULT_SOURCE_ROW ? index : (indexes[index] as number);
      this.origins[at] = at;
    }
  }

  /** The index of the source `name` among this batch's; labels given replace those an earlier row gave. */
  source(name: string, labels?: SourceLabels): number {
    let index = this.#indexOf.get(name);
    if (index === undefined) {
      index = this.sources.length;
      this.sources.push({ name, labels });
      this.#indexOf.set(name, index);
    } else if (labels !== undefined) {
      (this.sources[index] as BatchSource).labels = labels;
    }
    return index;
  }

  /** Empties the batch to fill it again, keeping its arrays. */
  clear(): void {
    this.length = 0;
    this.sources.length = 0;
    this.#indexOf.clear();
  }

  static of(samples: readonly MetricSample[]): Batch {
    const batch = new Batch(Math.max(1, samples.length));
    for (const sample of samples) batch.add(sample);
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
 * Gives each row its source id from `ids` (the id of each of the batch's sources; 0: refused) and
 * keeps one row per (source, timestamp): the first for `skip`, the last for `update`, the first
 * with every later row's values filled in for `merge`, matching
 * what the database does with a key that is already stored, each in the place of the first.
 * Postgres refuses an ON CONFLICT DO UPDATE that would touch the same row twice in one statement,
 * so this is required, not an optimisation; it goes by id, since two names of a batch may be one
 * source (a row of no source and one naming the default). Rows of a refused source are left out.
 * Returns the batch itself when no row is left out; in the usual case (rows increasing by time,
 * then source) that is known without a lookup.
 */
export function dedupe(batch: Batch, mode: ConflictMode, ids: Int32Array): Batch {
  const { timestamps, sourceIndexes, sourceIds, length } = batch;
  let increasing = true;
  let refused = false;
  for (let i = 0; i < length; i++) {
    const index = sourceIndexes[i] as number;
    const id = index === DEFAULT_SOURCE_ROW ? DEFAULT_SOURCE_ID : (ids[index] as number);
    sourceIds[i] = id;
    if (id === 0) refused = true;
    if (i > 0 && increasing) {
      const before = timestamps[i - 1] as number;
      const at = timestamps[i] as number;
      increasing = at > before || (at === before && id > (sourceIds[i - 1] as number));
    }
  }
  if (increasing && !refused) return batch;
  /** Per source id, each timestamp's place among the rows kept. */
  const places = new Map<number, Map<number, number>>();
  const kept = new Int32Array(length);
  let count = 0;
  for (let i = 0; i < length; i++) {
    const id = sourceIds[i] as number;
    if (id === 0) continue;
    let ofSource = places.get(id);
    if (!ofSource) {
      ofSource = new Map();
      places.set(id, ofSource);
    }
    const key = timestamps[i] as number;
    const place = ofSource.get(key);
    if (place === undefined) {
      ofSource.set(key, count);
      kept[count++] = i;
    } else if (mode === 'update') {
      kept[place] = i;
    } else if (mode === 'merge') {
      // The row kept takes the values this one holds, as a stored row would (COALESCE).
      const into = kept[place] as number;
      if (!isMissingLoad(batch.loads[i] as number)) batch.loads[into] = batch.loads[i] as number;
      if (!isMissingConcurrency(batch.concurrencies[i] as number))
        batch.concurrencies[into] = batch.concurrencies[i] as number;
    }
  }
  if (count === length) return batch;
  const unique = new Batch(Math.max(1, count));
  for (let at = 0; at < count; at++) {
    const i = kept[at] as number;
    unique.timestamps[at] = timestamps[i] as number;
    unique.loads[at] = batch.loads[i] as number;
    unique.concurrencies[at] = batch.concurrencies[i] as number;
    unique.sourceIds[at] = sourceIds[i] as number;
    unique.origins[at] = batch.origins[i] as number;
  }
  unique.length = count;
  return unique;
}
