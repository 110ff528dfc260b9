import { resolve } from 'node:path';
import type { Logger } from '../observability/logger.js';
import { projectRoot } from '../paths.js';
import type { BatchTarget } from '../store/sample-batch.js';
import { type IngestSummary, ingestInputs } from './pipeline.js';

/**
 * Loads the bundled sample data (EMBEDDED_SAMPLE_DATA): on the server's first start on a new
 * embedded data directory, and on `npm run db:seed` / `prisma db seed`. Samples already stored are
 * skipped by timestamp, so seeding twice changes nothing.
 */
export async function loadSampleData(
  store: BatchTarget,
  options: {
    file: string;
    batchSize: number;
    logger: Logger;
    /** MAX_FUTURE (config.ingest.maxFutureSeconds): samples further ahead are refused. */
    maxFutureSeconds: number | undefined;
  },
): Promise<IngestSummary> {
  const file = resolve(projectRoot, options.file);
  const summary = await ingestInputs(store, [{ name: file, path: file }], {
    batchSize: options.batchSize,
    maxFutureSeconds: options.maxFutureSeconds,
  });
  options.logger.info(
    { file, inserted: summary.inserted, duplicates: summary.duplicates, rejected: summary.rejected },
    'Loaded sample data',
  );
  return summary;
}
