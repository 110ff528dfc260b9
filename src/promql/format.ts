// The JSON shapes and number formatting of Prometheus' HTTP API `data` object.
import type { Labels } from './labels.js';

/** [seconds since epoch, value as text] */
export type SamplePair = [number, string];

export type QueryData =
  | { resultType: 'vector'; result: Array<{ metric: Labels; value: SamplePair }> }
  | { resultType: 'matrix'; result: Array<{ metric: Labels; values: SamplePair[] }> }
  | { resultType: 'scalar'; result: SamplePair }
  | { resultType: 'string'; result: SamplePair };

/**
 * Go's strconv.FormatFloat(v, 'f', -1, 64): the shortest decimal that reads back as v, written
 * without an exponent. JS's Number#toString finds the same shortest digits but switches to
 * exponent notation outside [1e-7, 1e21), so those are expanded here.
 */
export function formatFloat(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Number.POSITIVE_INFINITY) return '+Inf';
  if (value === Number.NEGATIVE_INFINITY) return '-Inf';
  if (Object.is(value, -0)) return '-0';
  const text = String(value);
  const exponentAt = text.indexOf('e');
  if (exponentAt < 0) return text;
  const sign = value < 0 ? '-' : '';
  const mantissa = text.slice(sign.length, exponentAt);
  const exponent = Number(text.slice(exponentAt + 1));
  const pointAt = mantissa.indexOf('.');
  const digits = mantissa.replace('.', '');
  // Where the decimal point falls within `digits` once the exponent is applied.
  const point = (pointAt < 0 ? mantissa.length : pointAt) + exponent;
  if (point <= 0) return `${sign}0.${'0'.repeat(-point)}${digits}`;
  if (point >= digits.length) return `${sign}${digits}${'0'.repeat(point - digits.length)}`;
  return `${sign}${digits.slice(0, point)}.${digits.slice(point)}`;
}

/** Prometheus writes sample times as seconds, with millisecond precision. */
export function toSeconds(timeMs: number): number {
  return timeMs / 1000;
}
