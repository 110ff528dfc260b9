import type { ConflictMode } from '../domain/writes.js';
import type { OperationScope } from '../observability/operation-scope.js';
import { BatchSession, type ConflictMemory } from './batch-session.js';
import type { Batch, BatchResult, BatchTarget } from './sample-batch.js';
import { type Server, transaction } from './server.js';
import { SourceRegistry, type SourceResolver } from './source-registry.js';
import type { StatementRunner } from './statement-runner.js';

/**
 * Writes of samples, on the primary, each in a transaction of its own (batch-session.ts), with the
 * sources they name (source-registry.ts). `copyFromStdin`: whether the server takes COPY FROM
 * STDIN (PGlite's wire protocol does not). `maxSources`: MAX_SOURCES.
 */
export class Writes implements BatchTarget {
  readonly #conflicts: ConflictMemory = { lastBatchConflicted: false };
  readonly sources: SourceRegistry;

  constructor(
    private readonly primary: Server,
    private readonly copyFromStdin: boolean,
    maxSources: number,
  ) {
    this.sources = new SourceRegistry(primary, maxSources);
  }

  writeBatch(batch: Batch, mode: ConflictMode, wantIds: boolean): Promise<BatchResult> {
    return this.inTransaction((target) => target.writeBatch(batch, mode, wantIds));
  }

  /**
   * Runs `work` in one transaction on one connection: its batches are stored together or not at all.
   * Its statements are recorded in `scope`, the request's, and traced under it.
   */
  async inTransaction<T>(work: (target: BatchTarget) => Promise<T>, scope?: OperationScope): Promise<T> {
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
