/**
 * Parses a point in time the way the seed's clients send it: Unix epoch seconds (integer or
 * fractional) or an ISO-8601 string that states its offset. Returns a reason on failure.
 */
export type ParsedTime = { ok: true; date: Date } | { ok: false; reason: string };

// JavaScript dates end at ±8.64e15 ms (about 275760 AD), well inside Postgres' timestamptz range.
const MAX_DATE_MS = 8.64e15;
const ISO_WITH_OFFSET = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})$/i;

export function parseTimeInput(value: unknown): ParsedTime {
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) return { ok: false, reason: 'must be a finite number of seconds' };
    const ms = value * 1000;
    if (Math.abs(ms) > MAX_DATE_MS) return { ok: false, reason: 'is out of range' };
    return { ok: true, date: new Date(Math.round(ms)) };
  }
  if (typeof value === 'string') {
    const text = value.trim();
    if (/^-?\d+(\.\d+)?$/.test(text)) return parseTimeInput(Number(text));
    if (!ISO_WITH_OFFSET.test(text)) {
      return {
        ok: false,
        reason:
          'must be Unix epoch seconds or an ISO-8601 date-time with an offset, e.g. 2026-11-26T12:00:00Z',
      };
    }
    const date = new Date(text);
    if (Number.isNaN(date.getTime())) return { ok: false, reason: `is not a valid date-time: ${text}` };
    return { ok: true, date };
  }
  return { ok: false, reason: 'must be a number (epoch seconds) or an ISO-8601 string' };
}
