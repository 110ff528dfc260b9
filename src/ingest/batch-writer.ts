import { Prisma, type PrismaClient } from '../generated/prisma/client.js';
import type { MetricSample } from './validate.js';

export type ConflictMode = 'skip' | 'update';

/** The client or an interactive transaction's client: both can run the raw statement. */
export type SqlClient = Pick<PrismaClient, '$queryRaw'>;

export interface BatchCounts {
  inserted: number;
  updated: number;
  duplicates: number;
}

export interface BatchResult extends BatchCounts {
  /** Ids of the rows this batch inserted, ascending (input order), when asked for. */
  ids: string[];
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

interface Row {
  inserted: number;
  updated: number;
  ids: string | null;
}

const arrayLiteral = (values: Float64Array | Int32Array, length: number) =>
  `{${values.subarray(0, length).join(',')}}`;

/**
 * Writes one batch in one statement, so a batch is stored whole or not at all (a load killed
 * mid-way leaves only complete batches, and a rerun skips them by timestamp).
 *
 * Why raw SQL rather than `prisma.metric.createMany({ skipDuplicates: true })`: createMany returns
 * only a count, so it can neither return the new ids (`--print-ids`) nor tell an updated row from an
 * inserted one, and it has no ON CONFLICT DO UPDATE. It was also measured here at 15-19k rows/s
 * (it binds three parameters per row) against about 200k rows/s for this statement, which binds
 * three array parameters per batch and unnests them in the database.
 *
 * Timestamps travel as epoch milliseconds: integers, so exact. `xmax = 0` is true only for a row
 * version this statement inserted, which is how an inserted row is told from an updated one. The
 * update only fires when a value differs: re-sending an identical sample is a duplicate, not an
 * update, and leaves no dead row behind.
 */
export async function writeBatch(
  client: SqlClient,
  batch: Batch,
  mode: ConflictMode,
  wantIds: boolean,
): Promise<BatchResult> {
  if (batch.length === 0) return { inserted: 0, updated: 0, duplicates: 0, ids: [] };
  const unique = dedupe(batch, mode);
  const n = unique.length;
  const ids = wantIds
    ? Prisma.sql`string_agg(id::text, ',' ORDER BY id) FILTER (WHERE inserted)`
    : Prisma.sql`NULL`;
  const onConflict =
    mode === 'update'
      ? Prisma.sql`DO UPDATE SET cpu_load = EXCLUDED.cpu_load, concurrency = EXCLUDED.concurrency
          WHERE (metrics.cpu_load, metrics.concurrency) IS DISTINCT FROM (EXCLUDED.cpu_load, EXCLUDED.concurrency)`
      : Prisma.sql`DO NOTHING`;
  const rows = await client.$queryRaw<Row[]>`
    WITH written AS (
      INSERT INTO metrics ("timestamp", cpu_load, concurrency)
      SELECT to_timestamp(t / 1000.0), l, c
      FROM unnest(
        ${arrayLiteral(unique.timestamps, n)}::float8[],
        ${arrayLiteral(unique.loads, n)}::real[],
        ${arrayLiteral(unique.concurrencies, n)}::integer[]
      ) AS u(t, l, c)
      ON CONFLICT ("timestamp") ${onConflict}
      RETURNING id, (xmax = 0) AS inserted
    )
    SELECT (count(*) FILTER (WHERE inserted))::integer AS inserted,
           (count(*) FILTER (WHERE NOT inserted))::integer AS updated,
           ${ids} AS ids
    FROM written`;
  const row = rows[0] as Row;
  return {
    inserted: row.inserted,
    updated: row.updated,
    duplicates: batch.length - row.inserted - row.updated,
    ids: row.ids ? row.ids.split(',') : [],
  };
}

/**
 * Collects samples into batches and writes them one after another, with at most one batch being
 * written while the next is being filled: parsing and the database overlap, and memory holds two
 * batches whatever the input size.
 */
export class BatchWriter {
  readonly totals: BatchCounts = { inserted: 0, updated: 0, duplicates: 0 };
  private batch: Batch;
  private spare: Batch | undefined;
  private inFlight: Promise<void> | undefined;

  constructor(
    private readonly client: SqlClient,
    private readonly options: {
      batchSize: number;
      mode: ConflictMode;
      onIds?: (ids: string[]) => void | Promise<void>;
      onBatchWritten?: (result: BatchResult) => void;
    },
  ) {
    this.batch = new Batch(options.batchSize);
  }

  /** Adds a sample (copied, so the caller may reuse the object); returns a promise only when the caller has to wait (a batch is being handed off). */
  add(sample: MetricSample): Promise<void> | undefined {
    this.batch.push(sample.timestampMs, sample.cpuLoad, sample.concurrency);
    return this.batch.length >= this.batch.capacity ? this.dispatch() : undefined;
  }

  /** Writes what is left and waits for every write. */
  async finish(): Promise<BatchCounts> {
    if (this.batch.length > 0) await this.dispatch();
    await this.inFlight;
    this.inFlight = undefined;
    return this.totals;
  }

  /** Waits for the write in progress, if any, without writing more or throwing. */
  async settle(): Promise<void> {
    await this.inFlight?.catch(() => {});
  }

  private async dispatch(): Promise<void> {
    const batch = this.batch;
    // Batches are written in order, one at a time: a later batch must see an earlier one's rows
    // for first-wins and last-wins to hold across batches.
    await this.inFlight;
    // The batch written before is done, so its arrays can be filled again.
    this.batch = this.spare ?? new Batch(batch.capacity);
    this.batch.length = 0;
    const write = this.write(batch);
    // Marked handled now; the error is rethrown where the next dispatch or finish() awaits it.
    write.catch(() => {});
    this.inFlight = write;
  }

  private async write(batch: Batch): Promise<void> {
    const result = await writeBatch(this.client, batch, this.options.mode, this.options.onIds !== undefined);
    this.totals.inserted += result.inserted;
    this.totals.updated += result.updated;
    this.totals.duplicates += result.duplicates;
    if (this.options.onIds && result.ids.length > 0) await this.options.onIds(result.ids);
    this.options.onBatchWritten?.(result);
    this.spare = batch;
  }
}
