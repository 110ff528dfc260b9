import type { ConflictMode } from '../domain/writes.js';
import type { OperationScope } from '../observability/operation-scope.js';
import { BatchSession, type ConflictMemory } from './batch-session.js';
import type { Batch, BatchResult, BatchTarget } from './sample-batch.js';
import { type Server, transaction } from './server.js';

/**
 * Writes of samples, on the primary, each in a transaction of its own (batch-session.ts).
 * `copyFromStdin`: whether the server takes COPY FROM STDIN (PGlite's wire protocol does not).
 */
export class Writes implements BatchTarget {
  readonly #conflicts: ConflictMemory = { lastBatchConflicted: false };

  constructor(
    private readonly primary: Server,
    private readonly copyFromStdin: boolean,
  ) {}

  writeBatch(batch: Batch, mode: ConflictMode, wantIds: boolean): Promise<BatchResult> {
    return this.inTransaction((target) => target.writeBatch(batch, mode, wantIds));
  }

  /**
   * Runs `work` in one transaction on one connection: its batches are stored together or not at all.
   * Its statements are recorded in `scope`, the request's, and traced under it.
   */
  inTransaction<T>(work: (target: BatchTarget) => Promise<T>, scope?: OperationScope): Promise<T> {
    return transaction(this.primary, 'BEGIN', (client) =>
      work(
        new BatchSession(client, {
          copyFromStdin: this.copyFromStdin,
          observed: (summary, text, values, run, own) =>
            this.primary.observed(summary, text, values, run, own ?? scope),
          conflicts: this.#conflicts,
        }),
      ),
    );
  }
}
