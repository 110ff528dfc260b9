import { createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Tracer } from '@opentelemetry/api';
import {
  collectUnknownFields,
  futureHorizon,
  type MetricSample,
  type Problem,
  type SourceFallback,
  validateRecordInto,
  withSource,
} from '../domain/sample.js';
import type { BatchCounts, ConflictMode } from '../domain/writes.js';
import type { BatchTarget } from '../store/sample-batch.js';
import { BatchWriter } from './batch-writer.js';
import { type Format, type Input, openInput, READERS } from './inputs.js';

/** Rows per statement when the caller does not say; `config.ingest.batchSize` is the usual setting. */
export const DEFAULT_BATCH_SIZE = 5000;

/** A refused record: where it was and why. */
export interface Rejection extends Problem {
  /** The input's name (a path, or `<stdin>`). */
  input: string;
  line: number;
}

export interface IngestProgress {
  input: string;
  /** Bytes read from the input so far (compressed bytes for gzip). */
  bytes: number;
  totalBytes: number | undefined;
  /** Records read so far, over all inputs. */
  records: number;
  phase: 'validate' | 'load';
}

export interface IngestOptions {
  /** Overrides detection from the extension and the first character. */
  format?: Format;
  /** What a timestamp that is already stored does: keep the stored sample (default) or replace it. */
  onConflict?: ConflictMode;
  batchSize?: number;
  /** Samples further ahead of now than this are refused (MAX_FUTURE); undefined: any time. */
  maxFutureSeconds?: number | undefined;
  /** The source of records that name none (--source, --label); without it, the default source. */
  source?: SourceFallback | undefined;
  /** Validate every input first and write nothing if any record is refused. */
  strict?: boolean;
  /** Validate and count only; the database is not used. */
  dryRun?: boolean;
  onRejected?: (rejection: Rejection) => void;
  onWarning?: (message: string) => void;
  /** Receives the ids of newly inserted rows, batch by batch; writing waits for the returned promise. */
  onIds?: (ids: string[]) => void | Promise<void>;
  onProgress?: (progress: IngestProgress) => void;
  /** A span per input and per batch written, when tracing. */
  tracer?: Tracer | undefined;
}

export interface IngestSummary extends BatchCounts {
  /** Records read: valid and rejected. */
  read: number;
  valid: number;
  /** Records refused: invalid, or (found as they were written) of a new source past MAX_SOURCES. */
  rejected: number;
  elapsedMs: number;
  /** Records read per second of elapsed time. */
  rowsPerSecond: number;
  dryRun: boolean;
  /** False when nothing was written: a dry run, or a strict run that found a bad record. */
  written: boolean;
}

interface Counters {
  read: number;
  rejected: number;
}

const DECOMPRESSION_ERROR = /^Z_|^ERR_ZLIB/;

/**
 * A record's origin as the batch writer carries it: its input's position among the inputs and its
 * line, in one number (exact in a double for 2^21 inputs of 2^32 lines), so a sample the store
 * refuses is reported where it was read.
 */
const LINES_PER_INPUT = 2 ** 32;
const originOf = (inputIndex: number, line: number) => inputIndex * LINES_PER_INPUT + line;
function placeOf(origin: number): { inputIndex: number; line: number } {
  const inputIndex = Math.floor(origin / LINES_PER_INPUT);
  return { inputIndex, line: origin - inputIndex * LINES_PER_INPUT };
}

/**
 * Reads one input and hands each valid sample to `onSample`, reporting the rest. Stops at a fatal
 * problem (a structure the reader cannot resume after), which still counts as one rejected record.
 */
async function scanInput(
  input: Input,
  options: IngestOptions,
  phase: IngestProgress['phase'],
  counters: Counters,
  onSample: ((sample: MetricSample, line: number) => Promise<void> | undefined) | undefined,
): Promise<void> {
  let bytes = 0;
  let totalBytes: number | undefined;
  const report = options.onProgress;
  const opened = await openInput(input, {
    format: options.format,
    onBytes: report
      ? (n) => {
          bytes += n;
          report({ input: input.name, bytes, totalBytes, records: counters.read, phase });
        }
      : undefined,
  });
  totalBytes = opened.totalBytes;
  const fromText = opened.format === 'csv';
  const unknown = new Map<string, number>();
  const sample: MetricSample = { timestampMs: 0, cpuLoad: null, concurrency: null };
  // From when the input is opened: a long run's horizon does not move under its records.
  const horizon = futureHorizon(options.maxFutureSeconds);
  const reject = (line: number, problem: Problem) => {
    counters.rejected++;
    options.onRejected?.({ input: input.name, line, ...problem });
  };
  let lastLine = 0;
  try {
    outer: for await (const items of READERS[opened.format](opened.text)) {
      for (const item of items) {
        counters.read++;
        lastLine = item.line;
        if (item.problem) {
          reject(item.line, item.problem);
          if (item.fatal) break outer;
          continue;
        }
        collectUnknownFields(item.record, item.line, unknown);
        const problem =
          validateRecordInto(item.record, fromText, sample, horizon) ?? withSource(sample, options.source);
        if (problem) {
          reject(item.line, problem);
          continue;
        }
        if (onSample) {
          const pending = onSample(sample, item.line);
          if (pending) await pending;
        }
      }
    }
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? '';
    if (!DECOMPRESSION_ERROR.test(code)) throw error;
    counters.read++;
    reject(lastLine + 1, {
      field: 'file',
      reason: `cannot decompress: ${(error as Error).message}; the rest of the file was not read`,
    });
  }
  if (unknown.size > 0) {
    const list = [...unknown].map(([field, line]) => `${field} (first on line ${line})`).join(', ');
    options.onWarning?.(`${input.name}: ignored unknown field${unknown.size > 1 ? 's' : ''}: ${list}`);
  }
}

/** scanInput within a span of the input, when tracing: records read and rejected in it. */
function scan(...args: Parameters<typeof scanInput>): Promise<void> {
  const [input, options, phase, counters] = args;
  const tracer = options.tracer;
  if (!tracer) return scanInput(...args);
  const before = { read: counters.read, rejected: counters.rejected };
  return tracer.startActiveSpan(
    'ingest.file',
    { attributes: { 'file.path': input.name, 'metrics_api.ingest.phase': phase } },
    async (span) => {
      try {
        await scanInput(...args);
      } finally {
        span.setAttributes({
          'metrics_api.ingest.records': counters.read - before.read,
          'metrics_api.ingest.rejected': counters.rejected - before.rejected,
        });
        span.end();
      }
    },
  );
}

/**
 * Standard input can be read once only; a strict run reads its inputs twice (validate, then load),
 * so a stream is first copied, as it is, to a temporary file.
 */
async function spool(input: Input, directory: string, index: number): Promise<Input> {
  if (input.path !== undefined || !input.stream) return input;
  const path = join(directory, `input-${index}`);
  await pipeline(input.stream, createWriteStream(path));
  return { name: input.name, path };
}

function summarize(
  counters: Counters,
  counts: BatchCounts,
  started: number,
  dryRun: boolean,
  written: boolean,
) {
  const elapsedMs = performance.now() - started;
  return {
    read: counters.read,
    valid: counters.read - counters.rejected,
    rejected: counters.rejected,
    ...counts,
    elapsedMs: Math.round(elapsedMs),
    rowsPerSecond: elapsedMs > 0 ? Math.round(counters.read / (elapsedMs / 1000)) : 0,
    dryRun,
    written,
  } satisfies IngestSummary;
}

/**
 * Loads the inputs in order through one batch writer. The store is only needed when something is
 * written; pass `undefined` for a dry run.
 */
export async function ingestInputs(
  store: BatchTarget | undefined,
  inputs: readonly Input[],
  options: IngestOptions = {},
): Promise<IngestSummary> {
  const started = performance.now();
  const counters: Counters = { read: 0, rejected: 0 };
  const none: BatchCounts = { inserted: 0, updated: 0, duplicates: 0 };
  const dryRun = options.dryRun === true;
  if (dryRun) {
    for (const input of inputs) await scan(input, options, 'validate', counters, undefined);
    return summarize(counters, none, started, true, false);
  }
  if (!store) throw new Error('ingestInputs needs a store unless dryRun is set');

  let spoolDirectory: string | undefined;
  try {
    let readable = inputs;
    if (options.strict) {
      if (inputs.some((input) => input.path === undefined)) {
        spoolDirectory = await mkdtemp(join(tmpdir(), 'metrics-ingest-'));
        const directory = spoolDirectory;
        readable = await Promise.all(inputs.map((input, index) => spool(input, directory, index)));
      }
      for (const input of readable) await scan(input, options, 'validate', counters, undefined);
      if (counters.rejected > 0) return summarize(counters, none, started, false, false);
      counters.read = 0;
    }
    const writer = new BatchWriter(store, {
      batchSize: options.batchSize ?? DEFAULT_BATCH_SIZE,
      mode: options.onConflict ?? 'skip',
      onIds: options.onIds,
      onRefused: (origin, problem) => {
        const { inputIndex, line } = placeOf(origin);
        counters.rejected++;
        options.onRejected?.({ input: (readable[inputIndex] as Input).name, line, ...problem });
      },
      tracer: options.tracer,
    });
    try {
      for (const [inputIndex, input] of readable.entries()) {
        await scan(input, options, 'load', counters, (sample, line) =>
          writer.add(sample, originOf(inputIndex, line)),
        );
      }
    } catch (error) {
      // The batch being written must settle before the caller closes the connection.
      await writer.settle();
      throw error;
    }
    await writer.finish();
    return summarize(counters, writer.totals, started, false, true);
  } finally {
    if (spoolDirectory) await rm(spoolDirectory, { recursive: true, force: true });
  }
}
