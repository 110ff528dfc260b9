/**
 * `npm run db:seed` (and `prisma db seed`): loads the bundled sample data into DATABASE_URL, or
 * into the embedded database when it is unset. Samples already stored are skipped.
 */
import { openCommandDatabase } from '../src/cli/database.js';
import { loadConfig } from '../src/config.js';
import { loadSampleData } from '../src/ingest/sample-data.js';
import { createLogger } from '../src/observability/logger.js';
import { MetricStore } from '../src/store/metric-store.js';

const config = loadConfig();
const logger = createLogger(config, { service: 'metrics-seed', isTTY: process.stdout.isTTY });
const database = await openCommandDatabase(config, logger);
try {
  const store = new MetricStore(database, undefined, undefined, { maxSources: config.sources.max });
  // As the server does at start: the sample data goes to source 1, under DEFAULT_SOURCE's name.
  await store.nameDefaultSource(config.sources.defaultName);
  const summary = await loadSampleData(store, {
    file: config.embedded.sampleDataFile,
    batchSize: config.ingest.batchSize,
    logger,
    maxFutureSeconds: config.ingest.maxFutureSeconds,
  });
  process.exitCode = summary.rejected > 0 ? 1 : 0;
} finally {
  await database.close();
}
