/**
 * Validation of one metric sample, shared by the ingest readers and the GraphQL mutation. The rules
 * mirror the `metrics` table so that a record that passes here cannot fail at the database: a
 * failing INSERT would abort its whole batch, not just the bad row.
 */

import { formatDurationSeconds } from './duration.js';
import { checkTimestampMs, DECIMAL, describe, epochSecondsToMs, parseTimestamp, typeName } from './time.js';

/** Largest concurrency the `integer` column holds. */
export const MAX_CONCURRENCY = 2_147_483_647;

/** A sample ready to store. The timestamp is in epoch milliseconds, the column's precision. */
export interface MetricSample {
  timestampMs: number;
  cpuLoad: number;
  concurrency: number;
}

/** Why a record was refused; `field` names the input field, or `record` for the record as a whole. */
export interface Problem {
  field: string;
  reason: string;
}

export type Validated = { ok: true; sample: MetricSample } | { ok: false; problem: Problem };

/**
 * The latest time a sample may have: MAX_FUTURE after the moment it was taken. A sample far ahead
 * (a clock years off, milliseconds read as seconds) would otherwise sit alone in a partition of
 * its own or in the default partition, and skew every "latest" read; Prometheus and
 * VictoriaMetrics refuse such samples likewise.
 */
export interface FutureHorizon {
  latestMs: number;
  maxFutureSeconds: number;
}

/** The horizon `maxFutureSeconds` ahead of `nowMs`; undefined (MAX_FUTURE=off): any time. */
export function futureHorizon(
  maxFutureSeconds: number | undefined,
  nowMs = Date.now(),
): FutureHorizon | undefined {
  return maxFutureSeconds === undefined
    ? undefined
    : { latestMs: nowMs + maxFutureSeconds * 1000, maxFutureSeconds };
}

/** Problems with a valid timestamp beyond the horizon, or `null`. */
export function checkHorizon(timestampMs: number, horizon: FutureHorizon | undefined): string | null {
  if (horizon === undefined || timestampMs <= horizon.latestMs) return null;
  return `${new Date(timestampMs).toISOString()} is more than ${formatDurationSeconds(horizon.maxFutureSeconds)} ahead of now (MAX_FUTURE)`;
}

/** Problems with a CPU load that is already a number, or `null`. */
export function checkCpuLoad(value: number): string | null {
  if (!Number.isFinite(value)) return 'must be a finite number';
  if (value < 0) return `must be >= 0, got ${value}`;
  // The column is `real`: a double beyond float4's range would become Infinity, which the
  // table's CHECK constraint refuses.
  if (!Number.isFinite(Math.fround(value)))
    return `too large for a 32-bit float (max about 3.4e38), got ${value}`;
  return null;
}

/** Problems with a concurrency that is already a number, or `null`. */
export function checkConcurrency(value: number): string | null {
  if (!Number.isInteger(value)) return `must be an integer, got ${value}`;
  if (value < 0) return `must be >= 0, got ${value}`;
  if (value > MAX_CONCURRENCY) return `must be <= ${MAX_CONCURRENCY}, got ${value}`;
  return null;
}

function numberFrom(value: unknown, fromText: boolean): number | { error: string } {
  if (typeof value === 'number') return value;
  if (fromText && typeof value === 'string') {
    const text = value.trim();
    if (DECIMAL.test(text)) return Number(text);
    if (/^[+-]?(?:inf(?:inity)?|nan)$/i.test(text)) return { error: 'must be a finite number' };
    return { error: `must be a number, got ${describe(value)}` };
  }
  return { error: `must be a number, got ${typeName(value)}` };
}

const KNOWN_FIELDS = new Set(['timestamp', 'cpu_load', 'cpuLoad', 'concurrency']);

/** Records each key of `record` that the loader does not use, with its first line, for the once-per-file warning. */
export function collectUnknownFields(
  record: Record<string, unknown>,
  line: number,
  seen: Map<string, number>,
): void {
  for (const key in record) if (!KNOWN_FIELDS.has(key) && !seen.has(key)) seen.set(key, line);
}

function present(value: unknown): boolean {
  return value !== undefined && value !== '';
}

/**
 * Validates one input record into `out` (reused by the caller: the loader validates a million
 * records a run and allocates nothing per record here). Returns the problem, or `undefined` when
 * `out` holds a valid sample. `fromText` is true for CSV, whose cells are all strings; a timestamp
 * past `horizon` is refused. Only the first problem is reported, checking fields in the order
 * timestamp, cpu_load, concurrency.
 */
export function validateRecordInto(
  record: Record<string, unknown>,
  fromText: boolean,
  out: MetricSample,
  horizon?: FutureHorizon,
): Problem | undefined {
  const timestamp = record.timestamp;
  if (!present(timestamp)) return { field: 'timestamp', reason: 'missing' };
  if ((typeof timestamp === 'number' && Number.isFinite(timestamp)) || timestamp instanceof Date) {
    // The common cases (a JSON number; a Date the GraphQL scalar parsed), without the intermediate
    // objects of parseTimestamp.
    out.timestampMs = typeof timestamp === 'number' ? epochSecondsToMs(timestamp) : timestamp.getTime();
    const rangeError = checkTimestampMs(out.timestampMs);
    if (rangeError) return { field: 'timestamp', reason: rangeError };
  } else {
    const time = parseTimestamp(timestamp, fromText);
    if ('error' in time) return { field: 'timestamp', reason: time.error };
    out.timestampMs = time.ms;
  }
  const aheadError = checkHorizon(out.timestampMs, horizon);
  if (aheadError) return { field: 'timestamp', reason: aheadError };

  const snake = record.cpu_load;
  const camel = record.cpuLoad;
  if (present(snake) && present(camel))
    return { field: 'cpu_load', reason: 'both cpu_load and cpuLoad given; send one' };
  const cpuField = present(camel) ? 'cpuLoad' : 'cpu_load';
  const cpuValue = present(camel) ? camel : snake;
  if (!present(cpuValue)) return { field: 'cpu_load', reason: 'missing' };
  const cpu = typeof cpuValue === 'number' ? cpuValue : numberFrom(cpuValue, fromText);
  if (typeof cpu !== 'number') return { field: cpuField, reason: cpu.error };
  const cpuError = checkCpuLoad(cpu);
  if (cpuError) return { field: cpuField, reason: cpuError };
  out.cpuLoad = cpu;

  const concurrencyValue = record.concurrency;
  if (!present(concurrencyValue)) return { field: 'concurrency', reason: 'missing' };
  const concurrency =
    typeof concurrencyValue === 'number' ? concurrencyValue : numberFrom(concurrencyValue, fromText);
  if (typeof concurrency !== 'number') return { field: 'concurrency', reason: concurrency.error };
  const concurrencyError = checkConcurrency(concurrency);
  if (concurrencyError) return { field: 'concurrency', reason: concurrencyError };
  out.concurrency = concurrency;
  return undefined;
}

/** Validates one input record; see validateRecordInto. */
export function validateRecord(
  record: Record<string, unknown>,
  fromText = false,
  horizon?: FutureHorizon,
): Validated {
  const sample: MetricSample = { timestampMs: 0, cpuLoad: 0, concurrency: 0 };
  const problem = validateRecordInto(record, fromText, sample, horizon);
  return problem ? { ok: false, problem } : { ok: true, sample };
}
