/**
 * Validation of one metric sample, shared by the file loader and the GraphQL mutation. The rules
 * mirror the `metrics` table so that a record that passes here cannot fail at the database: a
 * failing INSERT would abort its whole batch, not just the bad row.
 */

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
 * Timestamps from 1970-01-01 to the end of 9999. Earlier instants are legal in `timestamptz` but in
 * a metrics feed they are almost always a zero or a sign error; later ones cannot be written as
 * ISO-8601 with a four-digit year and are almost always epoch milliseconds sent as seconds.
 */
export const MIN_TIMESTAMP_MS = 0;
export const MAX_TIMESTAMP_MS = Date.UTC(9999, 11, 31, 23, 59, 59, 999);
const RANGE_TEXT = '1970-01-01T00:00:00Z to 9999-12-31T23:59:59.999Z';

/** Largest concurrency the `integer` column holds. */
export const MAX_CONCURRENCY = 2_147_483_647;

const DECIMAL = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/;
const ISO_8601 =
  /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?(?:([Zz])|([+-])(\d{2})(?::?(\d{2}))?)?$/;

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return `"${value.length > 40 ? `${value.slice(0, 40)}...` : value}"`;
  if (typeof value === 'object') return 'an object';
  return String(value);
}

function typeName(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return `a ${typeof value}`;
}

/** Checks epoch milliseconds against the accepted range; `null` when they are fine. */
export function checkTimestampMs(ms: number): string | null {
  if (!Number.isFinite(ms)) return 'must be a finite number of seconds';
  if (ms < MIN_TIMESTAMP_MS || ms > MAX_TIMESTAMP_MS) {
    // Seconds * 1000 in range means the sender most likely gave milliseconds.
    const hint =
      ms > MAX_TIMESTAMP_MS && ms / 1000 <= MAX_TIMESTAMP_MS
        ? ' (this looks like milliseconds; send seconds)'
        : '';
    return `out of range: must be from ${RANGE_TEXT}${hint}`;
  }
  return null;
}

/** Epoch seconds to epoch milliseconds, rounded to the column's millisecond precision. */
export function epochSecondsToMs(seconds: number): number {
  return Math.round(seconds * 1000);
}

/**
 * Parses an ISO-8601 date-time that carries its UTC offset. A local time without one is refused:
 * which zone it meant depends on the machine that wrote it, and a wrong guess silently shifts data.
 */
export function parseIsoTimestamp(text: string): { ms: number } | { error: string } {
  const match = ISO_8601.exec(text.trim());
  if (!match)
    return { error: `unparseable: expected epoch seconds or ISO-8601 with offset, got ${describe(text)}` };
  const [, y, mo, d, h, mi, s, fraction, zulu, sign, oh, om] = match;
  if (!zulu && !sign) {
    return {
      error: `ISO-8601 timestamp without a UTC offset is ambiguous; add Z or ±hh:mm: ${describe(text)}`,
    };
  }
  const year = Number(y);
  const month = Number(mo);
  const day = Number(d);
  const hour = Number(h);
  const minute = Number(mi);
  const second = s === undefined ? 0 : Number(s);
  const offsetHours = oh === undefined ? 0 : Number(oh);
  const offsetMinutes = om === undefined ? 0 : Number(om);
  const daysInMonth = month >= 1 && month <= 12 ? new Date(Date.UTC(2000, month, 0)).getUTCDate() : 0;
  const leapDay = month === 2 && day === 29 && (year % 4 !== 0 || (year % 100 === 0 && year % 400 !== 0));
  if (
    month < 1 ||
    month > 12 ||
    day < 1 ||
    day > daysInMonth ||
    leapDay ||
    hour > 23 ||
    minute > 59 ||
    second > 59 ||
    offsetHours > 23 ||
    offsetMinutes > 59
  ) {
    return { error: `not a valid date and time: ${describe(text)}` };
  }
  // Rounded from the digits, not through floating point, so .0005 always rounds up.
  const millis =
    fraction === undefined
      ? 0
      : Math.round(Number(`${fraction.slice(0, 3).padEnd(3, '0')}.${fraction.slice(3) || '0'}`));
  const date = new Date(0);
  // setUTCFullYear, unlike Date.UTC, does not map years 0-99 to 1900-1999.
  date.setUTCFullYear(year, month - 1, day);
  date.setUTCHours(hour, minute, second, millis);
  const offsetMs = (sign === '-' ? -1 : 1) * (offsetHours * 60 + offsetMinutes) * 60_000;
  return { ms: date.getTime() - offsetMs };
}

/** `value` as a timestamp: a number of epoch seconds or an ISO-8601 string. */
export function parseTimestamp(value: unknown, fromText: boolean): { ms: number } | { error: string } {
  let ms: number;
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) return { error: 'must be a finite number of seconds' };
    ms = epochSecondsToMs(value);
  } else if (typeof value === 'string') {
    // In CSV every cell is text, so there a bare number is epoch seconds. In JSON, a number in a
    // string is refused like any other wrongly typed value.
    if (DECIMAL.test(value.trim())) {
      if (!fromText)
        return { error: `epoch seconds must be a JSON number, not a string: ${describe(value)}` };
      ms = epochSecondsToMs(Number(value));
    } else {
      const parsed = parseIsoTimestamp(value);
      if ('error' in parsed) return parsed;
      ms = parsed.ms;
    }
  } else {
    return { error: `must be epoch seconds or an ISO-8601 string, got ${typeName(value)}` };
  }
  const rangeError = checkTimestampMs(ms);
  return rangeError ? { error: rangeError } : { ms };
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
 * `out` holds a valid sample. `fromText` is true for CSV, whose cells are all strings. Only the
 * first problem is reported, checking fields in the order timestamp, cpu_load, concurrency.
 */
export function validateRecordInto(
  record: Record<string, unknown>,
  fromText: boolean,
  out: MetricSample,
): Problem | undefined {
  const timestamp = record.timestamp;
  if (!present(timestamp)) return { field: 'timestamp', reason: 'missing' };
  if (typeof timestamp === 'number' && Number.isFinite(timestamp)) {
    // The common case, without the intermediate objects of parseTimestamp.
    out.timestampMs = epochSecondsToMs(timestamp);
    const rangeError = checkTimestampMs(out.timestampMs);
    if (rangeError) return { field: 'timestamp', reason: rangeError };
  } else {
    const time = parseTimestamp(timestamp, fromText);
    if ('error' in time) return { field: 'timestamp', reason: time.error };
    out.timestampMs = time.ms;
  }

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
export function validateRecord(record: Record<string, unknown>, fromText = false): Validated {
  const sample: MetricSample = { timestampMs: 0, cpuLoad: 0, concurrency: 0 };
  const problem = validateRecordInto(record, fromText, sample);
  return problem ? { ok: false, problem } : { ok: true, sample };
}
