import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import type { ConflictMode } from '../domain/writes.js';
import { encodeBinaryCopy } from './copy-binary.js';
import {
  type Batch,
  type BatchResult,
  type BatchTarget,
  dedupe,
  isMissingConcurrency,
  isMissingLoad,
  type RefusedRow,
} from './sample-batch.js';
import type { ResolvedSources, SourceResolver } from './source-registry.js';
import type { StatementRunner } from './statement-runner.js';
import { METRICS } from './tables.js';

const STAGING = 'metrics_staging';
const COLUMNS = 'source_id, "timestamp", cpu_load, concurrency';
const CREATE_STAGING = `CREATE TEMP TABLE ${STAGING} (source_id integer, "timestamp" timestamptz, cpu_load real, concurrency integer) ON COMMIT DROP`;
const COPY_INTO_METRICS = `COPY ${METRICS} (${COLUMNS}) FROM STDIN (FORMAT binary)`;
const COPY_INTO_STAGING = `COPY ${STAGING} FROM STDIN (FORMAT binary)`;
const FILL_STAGING = `INSERT INTO ${STAGING} SELECT s, to_timestamp(t / 1000.0), l, c
  FROM unnest($1::integer[], $2::float8[], $3::real[], $4::integer[]) AS u(s, t, l, c)`;
/**
 * Takes metrics' writers' lock without writing a row: an insert of no rows fires metrics' BEFORE
 * STATEMENT trigger, which locks the one row of metrics_revision until the transaction ends (see
 * DRAW_ID_BOUND). Taken before a transaction writes to `sources` (see SourceResolver).
 */
const LOCK_WRITERS = `INSERT INTO ${METRICS} (${COLUMNS}) SELECT ${COLUMNS} FROM ${METRICS} WHERE false`;
const UNIQUE_VIOLATION = '23505';

/**
 * Whether the last batch met a (source, timestamp) already stored. Shared by the sessions of one
 * store: a load that re-sends what is stored goes straight to the merge instead of failing a COPY
 * a batch.
 */
export interface ConflictMemory {
  lastBatchConflicted: boolean;
}

export interface BatchSessionOptions {
  /** PGlite's wire protocol has no COPY FROM STDIN: there the staging table is filled by INSERT. */
  copyFromStdin: boolean;
  observed: StatementRunner;
  conflicts: ConflictMemory;
  /** Resolves the names of each batch's sources to ids, in this transaction. */
  sources: SourceResolver;
}

/**
 * Writes batches on one connection inside a transaction the caller opened and will end, so each
 * batch (or the caller's whole list of them) is stored whole or not at all: a load killed mid-way
 * leaves only complete batches, and a rerun skips them by (source, timestamp). The batch's sources
 * are resolved to ids first (made when new, in this transaction: see SourceResolver); the rows of
 * a source refused for MAX_SOURCES are left out and returned as refused.
 *
 * A batch is first copied straight into `metrics` under a savepoint: a load of new samples, the
 * usual case, then costs what `psql \copy` does. When a key in it is already stored, COPY
 * refuses the batch (unique violation), the savepoint undoes it, and the batch goes the general
 * way: COPY into a temporary staging table, then one INSERT ... SELECT ... ON CONFLICT, which
 * counts inserted, updated and duplicate rows exactly and returns the new ids. With `--print-ids`
 * every batch goes the general way: COPY returns no ids.
 *
 * Why not `prisma.metric.createMany({ skipDuplicates: true })`: it returns only a count, so it can
 * neither return the new ids nor tell an updated row from an inserted one, and it has no ON
 * CONFLICT DO UPDATE; it was measured at 15-19k rows/s, binding three parameters a row.
 */
export class BatchSession implements BatchTarget {
  #stagingExists = false;
  #writersLocked = false;

  constructor(
    private readonly client: pg.ClientBase,
    private readonly options: BatchSessionOptions,
  ) {}

  async writeBatch(batch: Batch, mode: ConflictMode, wantIds: boolean): Promise<BatchResult> {
    if (batch.length === 0) return { inserted: 0, updated: 0, duplicates: 0, ids: [], refused: [] };
    const { unique, refused } = await this.#resolved(batch, mode);
    const stored = batch.length - refused.length;
    if (unique.length === 0) return { inserted: 0, updated: 0, duplicates: stored, ids: [], refused };
    const { conflicts } = this.options;
    if (this.options.copyFromStdin && !wantIds && !conflicts.lastBatchConflicted) {
      if (await this.#copiedIntoMetrics(unique)) {
        return { inserted: unique.length, updated: 0, duplicates: stored - unique.length, ids: [], refused };
      }
    }
    const written = await this.#merged(unique, mode, wantIds);
    conflicts.lastBatchConflicted = written.inserted < unique.length;
    return { ...written, duplicates: stored - written.inserted - written.updated, refused };
  }

  /**
   * Copies the batch into `metrics` when every row is new: none is stored, and no two share a key
   * (the usual case for the batches of many writers of one sample each, written together) or,
   * merging, those that do are made one (an agent's CPU load and concurrency of one instant, sent
   * in two requests). Returns the rows refused (a new source past MAX_SOURCES); undefined, having
   * written no sample, when a row is not new or COPY is not offered.
   */
  async copyIfAllNew(batch: Batch, mode: 'skip' | 'merge' = 'skip'): Promise<RefusedRow[] | undefined> {
    if (!this.options.copyFromStdin) return undefined;
    const { unique, refused } = await this.#resolved(batch, mode);
    if (mode === 'skip' && unique.length !== batch.length - refused.length) return undefined;
    if (unique.length > 0 && !(await this.#copiedIntoMetrics(unique))) {
      // The batches written next after a taken key go straight to the merge, not to a doomed COPY.
      this.options.conflicts.lastBatchConflicted = true;
      return undefined;
    }
    return refused;
  }

  /** The batch with its sources resolved: one row per key, without the rows of refused sources, which are returned. */
  async #resolved(batch: Batch, mode: ConflictMode): Promise<{ unique: Batch; refused: RefusedRow[] }> {
    const sources = await this.options.sources.resolve(batch.sources, () => this.#lockWriters());
    return { unique: dedupe(batch, mode, sources.ids), refused: refusedRows(batch, sources) };
  }

  /** Takes metrics' writers' lock, once a transaction (see LOCK_WRITERS). */
  async #lockWriters(): Promise<void> {
    if (this.#writersLocked) return;
    await this.options.observed(`INSERT ${METRICS}`, LOCK_WRITERS, [], () => this.client.query(LOCK_WRITERS));
    this.#writersLocked = true;
  }

  /** Whether the batch was copied into `metrics`; false (and nothing written) when a key is taken. */
  async #copiedIntoMetrics(unique: Batch): Promise<boolean> {
    await this.client.query('SAVEPOINT copy_into_metrics');
    try {
      await this.#copy(COPY_INTO_METRICS, unique);
    } catch (error) {
      if ((error as { code?: unknown }).code !== UNIQUE_VIOLATION) throw error;
      await this.client.query('ROLLBACK TO SAVEPOINT copy_into_metrics');
      return false;
    }
    await this.client.query('RELEASE SAVEPOINT copy_into_metrics');
    return true;
  }

  async #merged(unique: Batch, mode: ConflictMode, wantIds: boolean) {
    await this.#stage(unique);
    const { observed } = this.options;
    if (mode === 'skip' && !wantIds) {
      const statement = mergeStatement(mode, false);
      const result = await observed(`INSERT ${METRICS}`, statement, [], () => this.client.query(statement));
      return { inserted: result.rowCount ?? 0, updated: 0, ids: [] };
    }
    const { rows: drawn } = await observed(`INSERT ${METRICS}`, DRAW_ID_BOUND, [], () =>
      this.client.query<{ bound: string }>(DRAW_ID_BOUND),
    );
    const bound = drawn[0]?.bound;
    const statement = mergeStatement(mode, wantIds);
    const { rows } = await observed(`INSERT ${METRICS}`, statement, [bound], () =>
      this.client.query<{ inserted: number; updated: number; ids: string | null }>(statement, [bound]),
    );
    const row = rows[0] ?? { inserted: 0, updated: 0, ids: null };
    return { inserted: row.inserted, updated: row.updated, ids: row.ids ? row.ids.split(',') : [] };
  }

  /** Puts the batch, and only it, in the staging table (made once per transaction). */
  async #stage(unique: Batch): Promise<void> {
    const { observed } = this.options;
    if (!this.#stagingExists) {
      await this.client.query(CREATE_STAGING);
      this.#stagingExists = true;
    } else {
      await this.client.query(`TRUNCATE ${STAGING}`);
    }
    if (this.options.copyFromStdin) {
      await this.#copy(COPY_INTO_STAGING, unique);
      return;
    }
    const n = unique.length;
    const values = [
      arrayLiteral(unique.sourceIds, n),
      arrayLiteral(unique.timestamps, n),
      arrayLiteral(unique.loads, n, isMissingLoad),
      arrayLiteral(unique.concurrencies, n, isMissingConcurrency),
    ];
    // The values are whole batches: the span carries the statement, not them.
    await observed(`INSERT ${STAGING}`, FILL_STAGING, [], () => this.client.query(FILL_STAGING, values));
  }

  #copy(statement: string, unique: Batch): Promise<void> {
    const summary = statement === COPY_INTO_METRICS ? `COPY ${METRICS}` : `COPY ${STAGING}`;
    return this.options.observed(summary, statement, [], () =>
      pipeline(Readable.from([encodeBinaryCopy(unique)]), this.client.query(copyFrom(statement))),
    );
  }
}

/** An array parameter's text; `missing` tells which values are NULL. */
function arrayLiteral(
  values: Float64Array | Int32Array,
  length: number,
  missing?: (value: number) => boolean,
): string {
  const head = values.subarray(0, length);
  return `{${missing ? Array.from(head, (value) => (missing(value) ? 'NULL' : value)).join(',') : head.join(',')}}`;
}

/** The rows of `batch` whose source was refused, each with why. */
function refusedRows(batch: Batch, { refusals }: ResolvedSources): RefusedRow[] {
  if (refusals.size === 0) return [];
  const refused: RefusedRow[] = [];
  for (let i = 0; i < batch.length; i++) {
    const problem = refusals.get(batch.sourceIndexes[i] as number);
    if (problem) refused.push({ origin: batch.origins[i] as number, problem });
  }
  return refused;
}

/**
 * Takes the writers' lock, then draws an id: every id the merge that follows draws is larger, and
 * every row it can update has a smaller one. The insert of no rows fires metrics' BEFORE STATEMENT
 * trigger, which locks the one row of metrics_revision until the transaction ends (see the
 * 20261127211955_metrics_revision migration); every writer takes that lock before it draws an id,
 * so from here on no other session draws one, and a row inserted by another session, which this
 * merge could meet as a conflict, was committed with an id drawn before. It announces nothing:
 * the announcement trigger skips a statement of no rows.
 */
const DRAW_ID_BOUND = `WITH locked AS (INSERT INTO ${METRICS} (${COLUMNS}) SELECT ${COLUMNS} FROM ${STAGING} WHERE false RETURNING id)
  SELECT nextval(pg_get_serial_sequence('${METRICS}', 'id'))::text AS bound FROM (SELECT count(*) FROM locked) AS taken`;

/** The update of a stored row: its values replaced, or (merging) those the new row holds. */
function conflictUpdate(merging: boolean): string {
  const value = (column: string) =>
    merging ? `COALESCE(EXCLUDED.${column}, ${METRICS}.${column})` : `EXCLUDED.${column}`;
  return `DO UPDATE SET cpu_load = ${value('cpu_load')}, concurrency = ${value('concurrency')}
          WHERE (${METRICS}.cpu_load, ${METRICS}.concurrency) IS DISTINCT FROM (${value('cpu_load')}, ${value('concurrency')})`;
}

/**
 * The statement that moves the staged batch into `metrics`. A row whose id is above the bound
 * ($1, from DRAW_ID_BOUND) is one this statement inserted; the others it updated. (`xmax = 0`,
 * the usual test, is refused on a partitioned table: "cannot retrieve a system column in this
 * context".) The update only fires when a value differs, so re-sending an identical sample is a
 * duplicate, not an update, and leaves no dead row behind. Skipping without ids needs only the
 * command's row count.
 */
function mergeStatement(mode: ConflictMode, wantIds: boolean): string {
  const onConflict = mode === 'skip' ? 'DO NOTHING' : conflictUpdate(mode === 'merge');
  const insert = `INSERT INTO ${METRICS} (${COLUMNS}) SELECT ${COLUMNS} FROM ${STAGING}
      ON CONFLICT (source_id, "timestamp") ${onConflict}`;
  if (mode === 'skip' && !wantIds) return insert;
  const ids = wantIds ? `string_agg(id::text, ',' ORDER BY id) FILTER (WHERE id > $1::bigint)` : 'NULL';
  return `WITH written AS (${insert} RETURNING id)
    SELECT (count(*) FILTER (WHERE id > $1::bigint))::integer AS inserted,
           (count(*) FILTER (WHERE id <= $1::bigint))::integer AS updated,
           ${ids} AS ids
    FROM written`;
}
