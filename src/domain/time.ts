/**
 * The time rules of a sample: which instants are accepted and how they are written (epoch seconds
 * or ISO-8601 with an offset). The ingest readers, the GraphQL DateTime scalar, REST parameters
 * and the generator all parse time here.
 */

/** A window of time; either bound may be absent. */
export interface TimeRange {
  /** Inclusive. */
  start?: Date | undefined;
  /** Exclusive, unless a caller says otherwise (the legacy REST endpoint's `end` is inclusive). */
  end?: Date | undefined;
}

/**
 * `String(instant.getTime())`, written from two parts below 1e9. V8 caches the text of a number
 * outside the small-integer range (epoch milliseconds are outside it) in the old generation: a
 * page's 100 cursors left 3.3 KB there per request, which under load meant a mark-compact of the
 * whole heap every second or two and the tail latency that came with it (bench/PROFILE.md). Small
 * integers' text is made in the young generation and dies there.
 */
export function epochMillisecondsText(instant: Date): string {
  const ms = instant.getTime();
  const magnitude = Math.abs(ms);
  if (!(magnitude >= 1e9)) return String(ms);
  const high = Math.floor(magnitude / 1e9);
  const low = magnitude - high * 1e9;
  return `${ms < 0 ? '-' : ''}${high}${String(low).padStart(9, '0')}`;
}

/** Whether a window ends before it starts: the one rule every query with start and end applies. */
export function endsBeforeStart({ start, end }: TimeRange): boolean {
  return start !== undefined && end !== undefined && start > end;
}

/**
 * Timestamps from 1970-01-01 to the end of 9999. Earlier instants are legal in `timestamptz` but in
 * a metrics feed they are almost always a zero or a sign error; later ones cannot be written as
 * ISO-8601 with a four-digit year and are almost always epoch milliseconds sent as seconds.
 */
export const MIN_TIMESTAMP_MS = 0;
export const MAX_TIMESTAMP_MS = Date.UTC(9999, 11, 31, 23, 59, 59, 999);
const RANGE_TEXT = '1970-01-01T00:00:00Z to 9999-12-31T23:59:59.999Z';

export const DECIMAL = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/;
const ISO_8601 =
  /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?(?:([Zz])|([+-])(\d{2})(?::?(\d{2}))?)?$/;

/** The most characters of a client's text an error message quotes: a large value is never echoed whole. */
export const QUOTED_PREFIX_LENGTH = 40;

/** `text` in quotes, cut after QUOTED_PREFIX_LENGTH characters. */
export function quotedPrefix(text: string): string {
  return `"${text.length > QUOTED_PREFIX_LENGTH ? `${text.slice(0, QUOTED_PREFIX_LENGTH)}...` : text}"`;
}

export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return quotedPrefix(value);
  if (typeof value === 'object') return 'an object';
  return String(value);
}

export function typeName(value: unknown): string {
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

const DAY_MS = 86_400_000;
const pad2 = (n: number) => (n < 10 ? `0${n}` : `${n}`);
const pad3 = (n: number) => (n < 10 ? `00${n}` : n < 100 ? `0${n}` : `${n}`);
let formattedDay = Number.NaN;
let dayPrefix = '';

/**
 * `date.toISOString()`, the way every timestamp goes out. A page's timestamps, and an hourly
 * series', share their day, so the day's "YYYY-MM-DDT" is formatted once and reused: Date's own
 * formatting, which works out the calendar for every call, was a tenth of a page's CPU per row
 * (bench/PROFILE.md). Instants outside four-digit years are left to Date.
 */
export function isoTimestamp(date: Date): string {
  const ms = date.getTime();
  if (!(ms >= MIN_TIMESTAMP_MS && ms <= MAX_TIMESTAMP_MS)) return date.toISOString();
  const day = Math.floor(ms / DAY_MS);
  if (day !== formattedDay) {
    dayPrefix = new Date(day * DAY_MS).toISOString().slice(0, 11);
    formattedDay = day;
  }
  const withinDay = ms - day * DAY_MS;
  const seconds = Math.floor(withinDay / 1000);
  const minutes = Math.floor(seconds / 60);
  return `${dayPrefix}${pad2(Math.floor(minutes / 60))}:${pad2(minutes % 60)}:${pad2(seconds % 60)}.${pad3(withinDay % 1000)}Z`;
}
