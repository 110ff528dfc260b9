import { parseArgs } from 'node:util';
import { ConfigError, parseConfig } from '../../config.js';
import { parseIsoTimestamp } from '../../domain/time.js';
import { describeError, redact } from '../ingest/errors.js';
import type { CommandIo } from '../ingest/run.js';

export const HELP = `Usage: npm run partitions -- --from <date> --to <date> [--size <duration>]

Makes the partitions of metrics that cover [from, to), before a bulk back-fill of that time, so its
rows go to partitions of their own instead of metrics_default. Partitions that exist are left as
they are; rows of the range already in metrics_default move into the new partitions.

  --from <date>      Start, inclusive: 2026-01-01 (midnight UTC) or an ISO-8601 time with an offset.
  --to <date>        End, exclusive, in the same form.
  --size <duration>  Each partition's range. Default PARTITION_SIZE (1d).
  -h, --help         This text.

Exit codes: 0 done; 2 a mistake in the command line, the configuration or the database.
`;

/** At most this many partitions a run: a typo in a year should not make a million tables. */
export const MAX_PARTITIONS = 10_000;

export const EXIT = { ok: 0, failed: 2 } as const;

class UsageError extends Error {}

const DATE_ONLY = /^\d{4}-\d{2}-\d{2}$/;

function parseInstant(option: string, text: string | undefined): Date {
  if (text === undefined) throw new UsageError(`${option} is required`);
  const parsed = parseIsoTimestamp(DATE_ONLY.test(text) ? `${text}T00:00:00Z` : text);
  if ('error' in parsed) throw new UsageError(`${option} "${text}": ${parsed.error}`);
  return new Date(parsed.ms);
}

interface Options {
  from: Date;
  to: Date;
  sizeSeconds: number | undefined;
}

function parseOptions(argv: string[]): Options | 'help' {
  let values: { from?: string; to?: string; size?: string; help?: boolean };
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      options: {
        from: { type: 'string' },
        to: { type: 'string' },
        size: { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false },
      },
    }));
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  if (values.help) return 'help';
  const from = parseInstant('--from', values.from);
  const to = parseInstant('--to', values.to);
  if (from >= to) throw new UsageError(`--from (${values.from}) must be before --to (${values.to})`);
  let sizeSeconds: number | undefined;
  if (values.size !== undefined) {
    // The rule of PARTITION_SIZE, checked by the configuration's own schema.
    try {
      sizeSeconds = parseConfig({ PARTITION_SIZE: values.size }).partitions.sizeSeconds;
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      throw new UsageError(`--size "${values.size}": ${error.problems[0]?.replace(/^PARTITION_SIZE: /, '')}`);
    }
  }
  return { from, to, sizeSeconds };
}

/** The partitions command: `run(argv, io)` returns the exit code (scripts/partitions.ts). */
export async function run(argv: string[], io: CommandIo): Promise<number> {
  try {
    const options = parseOptions(argv);
    if (options === 'help') {
      io.stdout.write(HELP);
      return EXIT.ok;
    }
    let config: ReturnType<typeof parseConfig>;
    try {
      config = parseConfig(io.env);
    } catch (error) {
      if (error instanceof ConfigError) throw new UsageError(error.message);
      throw error;
    }
    const sizeSeconds = options.sizeSeconds ?? config.partitions.sizeSeconds;
    const [{ createLogger }, { openCommandDatabase }, { MetricStore }, { partitionStarts }] =
      await Promise.all([
        import('../../observability/logger.js'),
        import('../database.js'),
        import('../../store/metric-store.js'),
        import('../../store/metric-partitions.js'),
      ]);
    const count = partitionStarts(options.from, options.to, sizeSeconds).length;
    if (count > MAX_PARTITIONS) {
      throw new UsageError(
        `[${options.from.toISOString()}, ${options.to.toISOString()}) is ${count} partitions of ${sizeSeconds} s; at most ${MAX_PARTITIONS} a run`,
      );
    }
    const logger = createLogger(config, { service: 'metrics-partitions', fd: 2, isTTY: false });
    let database: Awaited<ReturnType<typeof openCommandDatabase>>;
    try {
      database = await openCommandDatabase(config, logger);
    } catch (error) {
      throw new UsageError(`cannot open the database: ${describeError(error)}`);
    }
    try {
      const store = new MetricStore(database);
      let created: string[];
      try {
        created = await store.partitions.create(options.from, options.to, sizeSeconds);
      } catch (error) {
        const where = database.embedded ? 'the embedded database' : `PostgreSQL at ${redact(database.url)}`;
        throw new UsageError(`making partitions in ${where} failed: ${describeError(error)}`);
      }
      for (const name of created) io.stdout.write(`${name}\n`);
      io.stderr.write(
        `partitions: ${created.length} created, ${count - created.length} of [${options.from.toISOString()}, ${options.to.toISOString()}) already covered\n`,
      );
      return EXIT.ok;
    } finally {
      await database.close();
    }
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    io.stderr.write(`partitions: ${error.message}\n`);
    return EXIT.failed;
  }
}
