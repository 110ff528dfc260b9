import type { Tracer } from '@opentelemetry/api';
import type { MetricSample, Problem } from '../domain/sample.js';
import type { BatchCounts, ConflictMode } from '../domain/writes.js';
import { Batch, type BatchTarget } from '../store/sample-batch.js';

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
    private readonly target: BatchTarget,
    private readonly options: {
      batchSize: number;
      mode: ConflictMode;
      onIds?: (ids: string[]) => void | Promise<void>;
      /** Each sample the store refused as it wrote it (its source may not be made), by the origin it was added with. */
      onRefused: (origin: number, problem: Problem) => void;
      /** A span per batch written, when tracing. */
      tracer?: Tracer | undefined;
    },
  ) {
    this.batch = new Batch(options.batchSize);
  }

  /**
   * Adds a sample (copied, so the caller may reuse the object), with the caller's number for it
   * (`origin`, given back if the sample is refused); returns a promise only when the caller has to
   * wait (a batch is being handed off).
   */
  add(sample: MetricSample, origin: number): Promise<void> | undefined {
    this.batch.add(sample, origin);
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
    this.batch.clear();
    const write = this.write(batch);
    // Marked handled now; the error is rethrown where the next dispatch or finish() awaits it.
    write.catch(() => {});
    this.inFlight = write;
  }

  private async write(batch: Batch): Promise<void> {
    const { tracer } = this.options;
    const write = () => this.target.writeBatch(batch, this.options.mode, this.options.onIds !== undefined);
    const result = tracer
      ? await tracer.startActiveSpan('ingest.batch', async (span) => {
          try {
            const written = await write();
            span.setAttributes({
              'metrics_api.ingest.rows': batch.length,
              'metrics_api.ingest.inserted': written.inserted,
              'metrics_api.ingest.updated': written.updated,
              'metrics_api.ingest.duplicates': written.duplicates,
              'metrics_api.ingest.refused': written.refused.length,
            });
            return written;
          } finally {
            span.end();
          }
        })
      : await write();
    this.totals.inserted += result.inserted;
    this.totals.updated += result.updated;
    this.totals.duplicates += result.duplicates;
    for (const { origin, problem } of result.refused) this.options.onRefused(origin, problem);
    if (this.options.onIds && result.ids.length > 0) await this.options.onIds(result.ids);
    this.spare = batch;
  }
}
