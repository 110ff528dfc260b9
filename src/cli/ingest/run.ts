import type { Readable, Writable } from 'node:stream';
import { SpanStatusCode, type Tracer } from '@opentelemetry/api';
import type { Input } from '../../ingest/inputs.js';
import type { IngestSummary } from '../../ingest/pipeline.js';
import { startTelemetry, telemetrySettings } from '../../observability/telemetry.js';
import type { MetricStore } from '../../store/metric-store.js';
import {
  COMMAND_EXIT,
  type CommandIo,
  cannotOpenDatabase,
  describeDatabase,
  describeError,
  parseCommandConfig,
  UsageError,
  usageErrorText,
} from '../command.js';
import type { Database } from '../database.js';
import { checkReadable, type Options, parseOptions } from './args.js';
import { HELP } from './help.js';
import { Progress } from './progress.js';

/** What ingest reads and writes: a command's streams and the standard input it may read records from. */
export interface IngestIo extends CommandIo {
  stdin: Readable;
}

/** Exit codes: every record valid; some rejected; usage, input, configuration or database error. */
export const EXIT = { ...COMMAND_EXIT, rejected: 1 } as const;

function formatSummary(summary: IngestSummary, options: Options): string {
  const seconds = (summary.elapsedMs / 1000).toFixed(2);
  let line =
    `ingest: read ${summary.read}, inserted ${summary.inserted}, updated ${summary.updated}, ` +
    `duplicates ${summary.duplicates}, rejected ${summary.rejected}, elapsed ${seconds} s, ` +
    `${summary.rowsPerSecond} rows/s`;
  if (summary.dryRun) line += ` (dry run: ${summary.valid} valid, nothing written)`;
  else if (options.strict && !summary.written) line += ' (--strict: nothing written)';
  return line;
}

/** Writes to `stream`, waiting when it is full so ids never pile up in memory. */
function writeTo(stream: Writable, text: string): Promise<void> | undefined {
  if (stream.write(text)) return undefined;
  return new Promise((resolve) => stream.once('drain', resolve));
}

/** Fails fast, with what to fix, before any input is read. */
async function checkDatabase(database: Database, store: MetricStore): Promise<void> {
  const where = describeDatabase(database);
  let exists: boolean;
  try {
    exists = await store.tableExists();
  } catch (error) {
    throw new UsageError(
      `cannot connect to ${where}: ${describeError(error)}\n` +
        'Check DATABASE_URL (postgresql://user:password@host:port/database) and that the server is running.',
    );
  }
  if (!exists) {
    throw new UsageError(
      `the metrics table does not exist in ${where}; apply the migrations first: npm run db:deploy`,
    );
  }
}

async function load(argv: string[], io: IngestIo, tracer: Tracer | undefined): Promise<number> {
  const options = parseOptions(argv);
  if (options.help) {
    await writeTo(io.stdout, HELP);
    return EXIT.ok;
  }
  for (const file of options.files) if (file !== '-') await checkReadable(file);
  const config = parseCommandConfig(io.env);
  // Only the light modules load up front, so --help and usage errors answer at once.
  const [
    { createLogger },
    { openCommandDatabase },
    { MetricStore },
    { DefaultSourceNameTakenError },
    { ingestInputs },
    { DatabaseTelemetry, databaseAddress },
  ] = await Promise.all([
    import('../../observability/logger.js'),
    import('../database.js'),
    import('../../store/metric-store.js'),
    import('../../store/source-registry.js'),
    import('../../ingest/pipeline.js'),
    import('../../observability/database-telemetry.js'),
  ]);
  // stdout carries ids and the JSON summary, so logs go to stderr.
  const logger = createLogger(config, { service: 'metrics-ingest', fd: 2, isTTY: io.stderr.isTTY === true });
  const inputs: Input[] = options.files.map((file) =>
    file === '-' ? { name: '<stdin>', stream: io.stdin } : { name: file, path: file },
  );

  let database: Database | undefined;
  const progress = io.stderr.isTTY ? new Progress(io.stderr) : undefined;
  const log = (line: string) => (progress ? progress.log(line) : io.stderr.write(`${line}\n`));
  try {
    let store: MetricStore | undefined;
    if (!options.dryRun) {
      database = await openCommandDatabase(config, logger).catch(cannotOpenDatabase);
      store = new MetricStore(
        database,
        new DatabaseTelemetry({ tracer, address: databaseAddress(database.url) }),
        undefined,
        { maxSources: config.sources.max },
      );
      await checkDatabase(database, store);
      // As the server does at start: records naming no source go to source 1, under DEFAULT_SOURCE's name.
      await store.nameDefaultSource(config.sources.defaultName).catch((error: unknown) => {
        throw error instanceof DefaultSourceNameTakenError ? new UsageError(error.message) : error;
      });
    }
    let summary: IngestSummary;
    try {
      summary = await ingestInputs(store, inputs, {
        format: options.format,
        onConflict: options.onConflict,
        batchSize: options.batchSize ?? config.ingest.batchSize,
        maxFutureSeconds: config.ingest.maxFutureSeconds,
        source: options.source,
        strict: options.strict,
        dryRun: options.dryRun,
        onRejected: (r) => log(`${r.input}:${r.line}: ${r.field}: ${r.reason}`),
        onWarning: (message) => log(`warning: ${message}`),
        onIds: options.printIds ? (ids) => writeTo(io.stdout, `${ids.join('\n')}\n`) : undefined,
        onProgress: progress ? (p) => progress.update(p) : undefined,
        tracer,
      });
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'EISDIR' || code === 'EACCES' || code === 'ENOENT')
        throw new UsageError(describeError(error));
      throw new UsageError(
        `loading stopped: ${describeError(error)}\n` +
          'Rows from batches that completed are stored; once the problem is fixed, run the same command ' +
          'again: rows already stored are skipped by source and timestamp.',
      );
    } finally {
      progress?.stop();
    }
    io.stderr.write(`${formatSummary(summary, options)}\n`);
    if (options.json)
      await writeTo(io.stdout, `${JSON.stringify({ ...summary, onConflict: options.onConflict })}\n`);
    return summary.rejected > 0 ? EXIT.rejected : EXIT.ok;
  } finally {
    await database?.close();
  }
}

/**
 * `npm run ingest -- [options] [files...]` (see help.ts), returning the exit code. Everything it
 * reports goes to `io`: it never exits the process, so tests run it in-process.
 */
export async function run(argv: string[], io: IngestIo): Promise<number> {
  let telemetry: ReturnType<typeof startTelemetry> | undefined;
  try {
    telemetry = startTelemetry(telemetrySettings(io.env, 'metrics-ingest'), {
      runtimeMetrics: false,
      asyncContext: true,
    });
  } catch (error) {
    io.stderr.write(`ingest: ${(error as Error).message}\n`);
    return EXIT.failed;
  }
  const tracer = telemetry.tracer;
  const attempt = async (): Promise<number> => {
    try {
      return await load(argv, io, tracer);
    } catch (error) {
      if (error instanceof UsageError) {
        io.stderr.write(usageErrorText('ingest', error));
      } else {
        io.stderr.write(`ingest: unexpected error: ${(error as Error).stack ?? String(error)}\n`);
      }
      return EXIT.failed;
    }
  };
  try {
    if (!tracer) return await attempt();
    // One trace per run, its code on the root span.
    return await tracer.startActiveSpan('ingest', async (span) => {
      const code = await attempt();
      span.setAttribute('process.exit.code', code);
      if (code === EXIT.failed) span.setStatus({ code: SpanStatusCode.ERROR });
      span.end();
      return code;
    });
  } finally {
    // Every span is exported before the process exits, whatever the exit code.
    await telemetry.shutdown();
  }
}
