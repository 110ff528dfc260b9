import type { ConflictMode } from '../domain/writes.js';
import type { OperationScope } from '../observability/operation-scope.js';
import { BatchSession, type ConflictMemory } from './batch-session.js';
import { HalfRowJoin } from './half-rows.js';
import { Batch, type BatchResult, type BatchTarget, type RefusedRow } from './sample-batch.js';
import { type Server, transaction } from './server.js';
import { SourceRegistry, type SourceResolver } from './source-registry.js';
import type { StatementRunner } from './statement-runner.js';

/** The most rows one group of batches written together holds: INGEST_MAX_SAMPLES' default. */
const GROUP_MAX_ROWS = 10_000;

/** A batch waiting to be written in the next group, and its caller's answer. */
interface Waiting {
  batch: Batch;
  mode: ConflictMode;
  scope: OperationScope | undefined;
  resolve(result: BatchResult): void;
  reject(error: unknown): void;
}

/**
 * Writes of samples, on the primary, each in a transaction of its own (batch-session.ts), with the
 * sources they name (source-registry.ts), or several small ones in one (writeGrouped).
 * `copyFromStdin`: whether the server takes COPY FROM STDIN (PGlite's wire protocol does not).
 * `maxSources`: MAX_SOURCES.
 */
export class Writes implements BatchTarget {
  readonly #conflicts: ConflictMemory = { lastBatchConflicted: false };
  readonly sources: SourceRegistry;
  /** Batches waiting for the group being written to commit. */
  #waiting: Waiting[] = [];
  #writingGroups = false;

  /** Joins merging writes' half rows (half-rows.ts); undefined: they are written as they come. */
  readonly #halfRows: HalfRowJoin | undefined;

  /** `joinWindowMs`: how long a merging write's half row waits for its other half; 0: not at all. */
  constructor(
    private readonly primary: Server,
    private readonly copyFromStdin: boolean,
    maxSources: number,
    joinWindowMs: number,
  ) {
    this.sources = new SourceRegistry(primary, maxSources);
    this.#halfRows =
      joinWindowMs > 0
        ? new HalfRowJoin(joinWindowMs, (batch, scope) => this.#enqueue(batch, 'merge', scope))
        : undefined;
  }

  writeBatch(batch: Batch, mode: ConflictMode, wantIds: boolean): Promise<BatchResult> {
    return this.inTransaction((target) => target.writeBatch(batch, mode, wantIds));
  }

  /**
   * Runs `work` in one transaction on one connection: its batches are stored together or not at all.
   * Its statements are recorded in `scope`, the request's, and traced under it.
   */
  inTransaction<T>(work: (target: BatchTarget) => Promise<T>, scope?: OperationScope): Promise<T> {
    return this.#inSession(work, scope);
  }

  /**
   * Writes one small batch, in a transaction it may share with the batches of other callers
   * (group commit): while a group is written, the batches that arrive wait, and are written
   * together next, in one transaction (a lock of the revision row and a commit for all, instead of
   * one each: writers of one sample each would otherwise queue on that lock one by one). Each
   * caller gets its own counts and refused rows; its batch is stored whole or not at all, with the
   * others of its group: a failure of the group's transaction is every one of its callers'. A lone
   * batch is written at once, its statements recorded in its `scope`; those of a group, shared by
   * several requests, in none.
   */
  writeGrouped(batch: Batch, mode: ConflictMode, scope?: OperationScope): Promise<BatchResult> {
    if (mode === 'merge' && this.#halfRows) return this.#halfRows.write(batch, scope);
    return this.#enqueue(batch, mode, scope);
  }

  #enqueue(batch: Batch, mode: ConflictMode, scope: OperationScope | undefined): Promise<BatchResult> {
    return new Promise((resolve, reject) => {
      this.#waiting.push({ batch, mode, scope, resolve, reject });
      if (!this.#writingGroups) void this.#writeGroups();
    });
  }

  async #writeGroups(): Promise<void> {
    this.#writingGroups = true;
    while (this.#waiting.length > 0) {
      let rows = 0;
      let taken = 0;
      for (const { batch } of this.#waiting) {
        if (taken > 0 && rows + batch.length > GROUP_MAX_ROWS) break;
        rows += batch.length;
        taken++;
      }
      const group = this.#waiting.splice(0, taken);
      try {
        const scope = group.length === 1 ? group[0]?.scope : undefined;
        const results = await this.#inSession((session) => writeGroup(session, group, rows), scope);
        for (const [i, waiting] of group.entries()) waiting.resolve(results[i] as BatchResult);
      } catch (error) {
        for (const waiting of group) waiting.reject(error);
      }
    }
    this.#writingGroups = false;
  }

  async #inSession<T>(work: (session: BatchSession) => Promise<T>, scope?: OperationScope): Promise<T> {
    let sources: SourceResolver | undefined;
    const result = await transaction(this.primary, 'BEGIN', (client) => {
      const observed: StatementRunner = (summary, text, values, run, own) =>
        this.primary.observed(summary, text, values, run, own ?? scope);
      sources = this.sources.inTransaction(client, observed);
      return work(
        new BatchSession(client, {
          copyFromStdin: this.copyFromStdin,
          observed,
          conflicts: this.#conflicts,
          sources,
        }),
      );
    });
    sources?.committed();
    return result;
  }
}

/**
 * The batches of a group, written in the group's transaction: all in one COPY when every row is
 * new (each caller's rows then all inserted, but those refused); merging callers' rows of one key
 * made one row first, and written in one merge statement when some are stored, each caller's rows
 * counted as inserted (what a merging caller is told is how many of its rows were stored); else
 * each batch on its own, in order, as writeBatch writes it.
 */
async function writeGroup(
  session: BatchSession,
  group: readonly Waiting[],
  rows: number,
): Promise<BatchResult[]> {
  if (group.length > 1) {
    const together = new Batch(rows);
    /** Where each caller's rows start in `together`; a row's origin there is its place. */
    const starts = group.map(({ batch }) => {
      const start = together.length;
      together.append(batch);
      return start;
    });
    const merging = group.every(({ mode }) => mode === 'merge');
    let refused = await session.copyIfAllNew(together, merging ? 'merge' : 'skip');
    // Merging callers' rows go in one merge statement when some are stored: one each would cost
    // a staging table's fill and a statement per caller.
    if (!refused && merging) refused = (await session.writeBatch(together, 'merge', false)).refused;
    if (refused) {
      return group.map(({ batch }, caller) => {
        const start = starts[caller] as number;
        const own: RefusedRow[] = refused
          .filter(({ origin }) => origin >= start && origin < start + batch.length)
          .map(({ origin, problem }) => ({ origin: batch.origins[origin - start] as number, problem }));
        return { inserted: batch.length - own.length, updated: 0, duplicates: 0, ids: [], refused: own };
      });
    }
  }
  const results: BatchResult[] = [];
  for (const { batch, mode } of group) results.push(await session.writeBatch(batch, mode, false));
  return results;
}
