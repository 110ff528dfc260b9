/**
 * Loads metric samples from JSON, NDJSON or CSV files (or standard input) into the metrics table.
 * Run `npm run ingest -- --help` for the options.
 */
import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import cliProgress from 'cli-progress';
import { ConfigError, parseConfig } from '../src/config.js';
import type { Database } from '../src/database.js';
import type { ConflictMode, IngestProgress, IngestSummary, InputSource } from '../src/ingest/index.js';
// Only the light modules load up front; Prisma and the loader are imported once the command line
// has been checked, so --help and usage errors answer at once.
import { FORMATS, type Format } from '../src/ingest/sources.js';

const HELP = `Usage: npm run ingest -- [options] [files...]

Loads CPU-load samples into the metrics table. Each file may be a JSON array, NDJSON (one object a
line) or CSV with a header row, optionally gzipped. With no files, or a file named "-", reads
standard input.

Records:
  timestamp     Unix epoch seconds (integer or fractional) or an ISO-8601 string with an offset,
                e.g. 1795651200, 1795651200.25, "2026-11-26T00:00:00Z", "2026-11-26T01:00:00+01:00".
                Accepted range: 1970-01-01T00:00:00Z to 9999-12-31T23:59:59.999Z; stored to the
                millisecond. It is the natural key: one sample per instant.
  cpu_load      (or cpuLoad) a finite number >= 0 that fits a 32-bit float.
  concurrency   an integer from 0 to 2147483647.
  Other fields are ignored, with one warning per file.

Options:
  --format <json|ndjson|csv>   Input format. Default: from the extension (.json, .ndjson, .jsonl,
                               .csv, each optionally .gz), else from the first non-blank character
                               ('[' JSON array, '{' NDJSON, anything else CSV).
  --on-conflict <skip|update>  When a timestamp is already stored: keep the stored sample (skip,
                               the default) or replace it (update). Within one batch the first
                               (skip) or last (update) record for a timestamp wins.
  --strict                     Validate every input first; write nothing if any record is bad.
  --dry-run                    Validate and count without connecting to the database.
  --batch-size <n>             Rows per INSERT (1-30000). Default: INGEST_BATCH_SIZE or 5000.
  --print-ids                  Print the id of each newly inserted row on stdout, one per line.
  --json                       Print the summary as JSON on stdout (after any ids).
  -h, --help                   Show this help.

Output:
  Each rejected record is reported on stderr as "file:line: field: reason"; all valid records are
  still loaded (unless --strict). The last line on stderr is a summary: read, inserted, updated,
  duplicates, rejected, elapsed, rows/s. A progress bar is shown on a terminal, never when stderr
  is redirected.

Exit codes:
  0  every record was valid
  1  some records were rejected (with --strict: nothing was written)
  2  usage error, unreadable input, bad configuration or database error

Database:
  Uses DATABASE_URL, or the embedded database in EMBEDDED_DATA_DIR when it is unset (stop the
  server first: the embedded database allows one process at a time). A load that is interrupted
  can simply be run again: rows already stored are skipped by timestamp.

Examples:
  npm run ingest -- data/sample-metrics.json
  npm run ingest -- --on-conflict update metrics-*.ndjson.gz
  gunzip -c export.csv.gz | npm run ingest -- --format csv --json
  npm run ingest -- --dry-run --strict new-data.csv
`;

class UsageError extends Error {
  constructor(
    message: string,
    /** Whether to point at --help: for mistakes in the command line itself. */
    readonly commandLine = false,
  ) {
    super(message);
  }
}

interface Options {
  files: string[];
  format: Format | undefined;
  onConflict: ConflictMode;
  strict: boolean;
  dryRun: boolean;
  batchSize: number | undefined;
  printIds: boolean;
  json: boolean;
  help: boolean;
}

function parseOptions(argv: string[]): Options {
  let parsed: ReturnType<typeof parse>;
  function parse() {
    return parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        format: { type: 'string' },
        'on-conflict': { type: 'string', default: 'skip' },
        strict: { type: 'boolean', default: false },
        'dry-run': { type: 'boolean', default: false },
        'batch-size': { type: 'string' },
        'print-ids': { type: 'boolean', default: false },
        json: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
  }
  try {
    parsed = parse();
  } catch (error) {
    throw new UsageError((error as Error).message, true);
  }
  const { values, positionals } = parsed;
  const format = values.format;
  if (format !== undefined && !(FORMATS as readonly string[]).includes(format)) {
    throw new UsageError(`--format must be one of ${FORMATS.join(', ')}, got "${format}"`, true);
  }
  const onConflict = values['on-conflict'];
  if (onConflict !== 'skip' && onConflict !== 'update') {
    throw new UsageError(`--on-conflict must be skip or update, got "${onConflict}"`, true);
  }
  let batchSize: number | undefined;
  if (values['batch-size'] !== undefined) {
    batchSize = Number(values['batch-size']);
    if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > 30_000) {
      throw new UsageError(
        `--batch-size must be an integer from 1 to 30000, got "${values['batch-size']}"`,
        true,
      );
    }
  }
  const files = positionals.length > 0 ? positionals : ['-'];
  if (files.filter((file) => file === '-').length > 1) {
    throw new UsageError('standard input ("-") can be given only once', true);
  }
  return {
    files,
    format: format as Format | undefined,
    onConflict,
    strict: values.strict,
    dryRun: values['dry-run'],
    batchSize,
    printIds: values['print-ids'],
    json: values.json,
    help: values.help,
  };
}

async function checkReadable(file: string): Promise<void> {
  try {
    await access(file, constants.R_OK);
    if ((await stat(file)).isDirectory())
      throw new UsageError(`${file} is a directory; give the files inside it`);
  } catch (error) {
    if (error instanceof UsageError) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    throw new UsageError(
      code === 'ENOENT'
        ? `${file}: no such file`
        : `${file}: cannot read (${code ?? (error as Error).message})`,
    );
  }
}

/** The URL without its password, fit for an error message. */
function redact(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '(unparseable URL)';
  }
}

/**
 * One line about what went wrong. Prisma wraps driver errors in a multi-line "Invalid
 * `prisma.$queryRaw()` invocation" text around the driver's message; the SQLSTATE, when the
 * database answered, is in `meta`.
 */
function describeError(error: unknown): string {
  const prismaMessage = error instanceof Error ? /Message: `([^`]*)`/.exec(error.message)?.[1] : undefined;
  if (prismaMessage) {
    const code = (error as { meta?: { driverAdapterError?: { cause?: { originalCode?: unknown } } } }).meta
      ?.driverAdapterError?.cause?.originalCode;
    return typeof code === 'string' ? `${prismaMessage} (SQLSTATE ${code})` : prismaMessage;
  }
  const parts: string[] = [];
  let current: unknown = error;
  while (current instanceof Error && parts.length < 4) {
    const message = current.message.replace(/\s+/g, ' ').trim();
    if (message && !parts.includes(message)) parts.push(message);
    const code = (current as NodeJS.ErrnoException).code;
    if (code && !message.includes(code)) parts.push(code);
    current = current.cause;
  }
  if (error instanceof AggregateError) {
    for (const inner of error.errors) if (inner instanceof Error) parts.push(inner.message);
  }
  return parts.join(': ') || String(error);
}

/** Fails fast, with what to fix, before any input is read. */
async function checkDatabase(database: Database): Promise<void> {
  const where = database.embedded ? 'the embedded database' : `PostgreSQL at ${redact(database.url)}`;
  let rows: { table: string | null }[];
  try {
    rows = await database.prisma.$queryRaw<
      { table: string | null }[]
    >`SELECT to_regclass('metrics')::text AS "table"`;
  } catch (error) {
    throw new UsageError(
      `cannot connect to ${where}: ${describeError(error)}\n` +
        'Check DATABASE_URL (postgresql://user:password@host:port/database) and that the server is running.',
    );
  }
  if (!rows[0]?.table) {
    throw new UsageError(
      `the metrics table does not exist in ${where}; apply the migrations first: npm run db:deploy`,
    );
  }
}

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

/** Writes to stdout, waiting when the pipe is full so ids never pile up in memory. */
function writeOut(text: string): Promise<void> | undefined {
  if (process.stdout.write(text)) return undefined;
  return new Promise((resolve) => process.stdout.once('drain', resolve));
}

/**
 * Returns a function to call after each batch that keeps the heap from growing with the input.
 * V8 sizes its heap for throughput and lets garbage pile up while it can: each batch's query text
 * is copied several times inside Prisma, those copies outlive the young generation while the
 * query runs, and the old generation grew by about 100 MB per million rows before V8 chose to
 * collect it. A full collection whenever the heap has grown by HEAP_SLACK bytes since the last one
 * costs a few milliseconds and keeps the resident set flat. `gc` is only reachable with the
 * --expose-gc flag, which can still be turned on at run time for contexts created afterwards.
 */
const HEAP_SLACK = 24 * 1024 * 1024;
function heapGuard(): () => void {
  let collect: (() => void) | undefined;
  try {
    setFlagsFromString('--expose-gc');
    collect = runInNewContext('gc') as () => void;
  } catch {
    return () => {};
  }
  let floor = process.memoryUsage().heapUsed;
  return () => {
    if (process.memoryUsage().heapUsed - floor < HEAP_SLACK) return;
    collect?.();
    floor = process.memoryUsage().heapUsed;
  };
}

class Progress {
  private readonly bars = new cliProgress.MultiBar(
    {
      stream: process.stderr,
      hideCursor: true,
      clearOnComplete: true,
      fps: 5,
      format: '{phase} {source} [{bar}] {percentage}% | {records} records | ETA {eta_formatted}',
    },
    cliProgress.Presets.shades_classic,
  );
  private bar: cliProgress.SingleBar | undefined;
  private source = '';
  private readonly started = performance.now();

  update(progress: IngestProgress): void {
    // Short loads finish before a bar would be worth drawing.
    if (!this.bar && performance.now() - this.started < 500) return;
    const payload = { phase: progress.phase, source: progress.source, records: progress.records };
    const total = progress.totalBytes ?? 0;
    if (!this.bar) {
      this.bar = this.bars.create(total, progress.bytes, payload, {
        format:
          total > 0
            ? '{phase} {source} [{bar}] {percentage}% | {records} records | ETA {eta_formatted}'
            : '{phase} {source} | {records} records',
      });
    } else if (this.source !== progress.source) {
      this.bar.setTotal(total);
    }
    this.source = progress.source;
    this.bar.update(progress.bytes, payload);
  }

  log(line: string): void {
    if (this.bar) this.bars.log(`${line}\n`);
    else process.stderr.write(`${line}\n`);
  }

  stop(): void {
    this.bars.stop();
  }
}

async function run(argv: string[]): Promise<number> {
  const options = parseOptions(argv);
  if (options.help) {
    process.stdout.write(HELP);
    return 0;
  }
  for (const file of options.files) if (file !== '-') await checkReadable(file);
  let config: ReturnType<typeof parseConfig>;
  try {
    config = parseConfig();
  } catch (error) {
    if (error instanceof ConfigError) throw new UsageError(error.message);
    throw error;
  }
  const [{ pino }, { openDatabase }, { ingestSources }] = await Promise.all([
    import('pino'),
    import('../src/database.js'),
    import('../src/ingest/index.js'),
  ]);
  // stdout carries ids and the JSON summary, so logs go to stderr.
  const logger = pino({ level: config.logLevel, base: { service: 'metrics-ingest' } }, pino.destination(2));
  const sources: InputSource[] = options.files.map((file) =>
    file === '-' ? { name: '<stdin>', stream: process.stdin } : { name: file, path: file },
  );

  let database: Database | undefined;
  const progress = process.stderr.isTTY ? new Progress() : undefined;
  const log = (line: string) => (progress ? progress.log(line) : process.stderr.write(`${line}\n`));
  try {
    if (!options.dryRun) {
      try {
        database = await openDatabase(config, logger);
      } catch (error) {
        throw new UsageError(`cannot open the database: ${describeError(error)}`);
      }
      await checkDatabase(database);
    }
    let summary: IngestSummary;
    try {
      summary = await ingestSources(database?.prisma, sources, {
        format: options.format,
        onConflict: options.onConflict,
        batchSize: options.batchSize ?? config.ingest.batchSize,
        strict: options.strict,
        dryRun: options.dryRun,
        onRejected: (r) => log(`${r.source}:${r.line}: ${r.field}: ${r.reason}`),
        onWarning: (message) => log(`warning: ${message}`),
        onIds: options.printIds ? (ids) => writeOut(`${ids.join('\n')}\n`) : undefined,
        onProgress: progress ? (p) => progress.update(p) : undefined,
        onBatchWritten: heapGuard(),
      });
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'EISDIR' || code === 'EACCES' || code === 'ENOENT')
        throw new UsageError(describeError(error));
      throw new UsageError(
        `loading stopped: ${describeError(error)}\n` +
          'Rows from batches that completed are stored; once the problem is fixed, run the same command ' +
          'again: rows already stored are skipped by timestamp.',
      );
    } finally {
      progress?.stop();
    }
    process.stderr.write(`${formatSummary(summary, options)}\n`);
    if (options.json) await writeOut(`${JSON.stringify({ ...summary, onConflict: options.onConflict })}\n`);
    return summary.rejected > 0 ? 1 : 0;
  } finally {
    await database?.close();
  }
}

// A reader that closes the pipe early (`| head`) is not an error worth a stack trace.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw error;
});

run(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    if (error instanceof UsageError) {
      process.stderr.write(`ingest: ${error.message}\n`);
      if (error.commandLine) process.stderr.write('Run with --help for usage.\n');
    } else {
      process.stderr.write(`ingest: unexpected error: ${(error as Error).stack ?? String(error)}\n`);
    }
    process.exitCode = 2;
  },
);
