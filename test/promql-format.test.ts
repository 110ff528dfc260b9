// formatFloat must print what Go's strconv.FormatFloat(v, 'f', -1, 64) prints, as Prometheus does.
import { describe, expect, it } from 'vitest';
import { formatFloat } from '../src/promql/index.js';

describe('formatFloat', () => {
  it.each<[number, string]>([
    [0, '0'],
    [-0, '-0'],
    [1, '1'],
    [-2.5, '-2.5'],
    [0.1 + 0.2, '0.30000000000000004'],
    [1e21, '1000000000000000000000'],
    [1.5e22, '15000000000000000000000'],
    [-1e21, '-1000000000000000000000'],
    [123456789012345680000, '123456789012345680000'],
    [1e-7, '0.0000001'],
    [1.25e-7, '0.000000125'],
    [-3.4e-10, '-0.00000000034'],
    [1e-6, '0.000001'],
    [5e-324, `0.${'0'.repeat(323)}5`],
    [Number.MAX_VALUE, `17976931348623157${'0'.repeat(292)}`],
    [2 ** 53 + 2, '9007199254740994'],
    [Number.NaN, 'NaN'],
    [Number.POSITIVE_INFINITY, '+Inf'],
    [Number.NEGATIVE_INFINITY, '-Inf'],
  ])('prints %s as %s', (value, expected) => {
    expect(formatFloat(value)).toBe(expected);
  });

  it('round-trips: the printed text reads back as the same float', () => {
    for (const value of [Math.PI, 1 / 3, 2 / 3e30, 7e-300, 0.007, 123.456]) {
      expect(Number(formatFloat(value))).toBe(value);
      expect(formatFloat(value)).not.toMatch(/e/);
    }
  });
});
