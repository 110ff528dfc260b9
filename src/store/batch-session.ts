import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import type { ConflictMode } from '../domain/writes.js';
import { encodeBinaryCopy } from './copy-binary.js';
import { type Batch, type BatchResult, type BatchTarget, dedupe } from './sample-batch.js';
import type { StatementRunner } from './statement-runner.js';
import { METRICS } from './tables.js';

const STAGING = 'metrics_staging';
const COLUMNS = '"timestamp", cpu_load, concurrency';
const CREATE_STAGING = `CREATE TEMP TABLE ${STAGING} ("timestamp" timestamptz, cpu_load real, concurrency integer) ON COMMIT DROP`;
const COPY_INTO_METRICS = `COPY ${METRICS} (${COLUMNS}) FROM STDIN (FORMAT binary)`;
const COPY_INTO_STAGING = `COPY ${STAGING} FROM STDIN (FORMAT binary)`;
const FILL_STAGING = `INSERT INTO ${STAGING} SELECT to_timestamp(t / 1000.0), l, c
  FROM unnest($1::float8[], $2::real[], $3::integer[]) AS u(t, l, c)`;
const UNIQUE_VIOLATION = '23505';

/**
 * Whether the last batch met a timestamp already stored. Shared by the sessions of one store: a
 * load that re-sends what is stored goes straight to the merge instead of failing a COPY a batch.
 */
export interface ConflictMemory {
  lastBatchConflicted: boolean;
}

export interface BatchSessionOptions {
  /** PGlite's wire protocol has no COPY FROM STDIN: there the staging table is filled by INSERT. */
  copyFromStdin: boolean;
  observed: StatementRunner;
  conflicts: ConflictMemory;
}

/**
 * Writes batches on one connection inside a transaction the caller opened and will end, so each
 * batch (or the caller's whole list of them) is stored whole or not at all: a load killed mid-way
 * leaves only complete batches, and a rerun skips them by timestamp.
 *
 * A batch is first copied straight into `metrics` under a savepoint: a load of new samples, the
 * usual case, then costs what `psql \copy` does. When a timestamp in it is already stored, COPY
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

  constructor(
    private readonly client: pg.ClientBase,
    private readonly options: BatchSessionOptions,
  ) {}

  async writeBatch(batch: Batch, mode: ConflictMode, wantIds: boolean): Promise<BatchResult> {
    if (batch.length === 0) return { inserted: 0, updated: 0, duplicates: 0, ids: [] };
    const unique = dedupe(batch, mode);
    const { conflicts } = this.options;
    if (this.options.copyFromStdin && !wantIds && !conflicts.lastBatchConflicted) {
      if (await this.#copiedIntoMetrics(unique)) {
        return { inserted: unique.length, updated: 0, duplicates: batch.length - unique.length, ids: [] };
      }
    }
    const written = await this.#merged(unique, mode, wantIds);
    conflicts.lastBatchConflicted = written.inserted < unique.length;
    return { ...written, duplicates: batch.length - written.inserted - written.updated };
  }

  /** Whether the batch was copied into `metrics`; false (and nothing written) when a timestamp is taken. */
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
      arrayLiteral(unique.timestamps, n),
      arrayLiteral(unique.loads, n),
      arrayLiteral(unique.concurrencies, n),
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

const arrayLiteral = (values: Float64Array | Int32Array, length: number) =>
  `{${values.subarray(0, length).join(',')}}`;

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

/**
 * The statement that moves the staged batch into `metrics`. A row whose id is above the bound
 * ($1, from DRAW_ID_BOUND) is one this statement inserted; the others it updated. (`xmax = 0`,
 * the usual test, is refused on a partitioned table: "cannot retrieve a system column in this
 * context".) The update only fires when a value differs, so re-sending an identical sample is a
 * duplicate, not an update, and leaves no dead row behind. Skipping without ids needs only the
 * command's row count.
 */
function mergeStatement(mode: ConflictMode, wantIds: boolean): string {
  const onConflict =
    mode === 'update'
      ? `DO UPDATE SET cpu_load = EXCLUDED.cpu_load, concurrency = EXCLUDED.concurrency
          WHERE (${METRICS}.cpu_load, ${METRICS}.concurrency) IS DISTINCT FROM (EXCLUDED.cpu_load, EXCLUDED.concurrency)`
      : 'DO NOTHING';
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
