// parseQuery: each construct of the subset becomes the expected AST; everything else is refused
// with bad_data naming what was refused.
import { describe, expect, it } from 'vitest';
import { type Expr, PromQLError, parseQuery } from '../src/promql/index.js';

const cpu = { name: '__name__', operator: '=', value: 'cpu_load' } as const;
const selector = (...matchers: object[]) => ({ kind: 'vectorSelector', matchers, offsetMs: 0 });

function refusal(query: string): PromQLError {
  try {
    parseQuery(query);
  } catch (error) {
    if (error instanceof PromQLError) return error;
    throw error;
  }
  throw new Error(`${query} parsed`);
}

describe('parseQuery', () => {
  it.each<[string, Expr]>([
    [
      '1+1',
      {
        kind: 'binary',
        op: '+',
        lhs: { kind: 'number', value: 1 },
        rhs: { kind: 'number', value: 1 },
        returnBool: false,
      },
    ],
    ['-1.5', { kind: 'number', value: -1.5 }],
    ['0x10', { kind: 'number', value: 16 }],
    ['010', { kind: 'number', value: 8 }],
    ['"a\\tb"', { kind: 'string', value: 'a\tb' }],
    ['`raw\\n`', { kind: 'string', value: 'raw\\n' }],
    ['(cpu_load{source="x"})', selector({ name: 'source', operator: '=', value: 'x' }, cpu) as Expr],
  ])('parses %s', (query, expected) => {
    expect(parseQuery(query)).toEqual(expected);
  });

  it('reads every matcher operator and both metric name forms', () => {
    expect(parseQuery('cpu_load{a="1", b!="2", c=~"3", d!~"4"}')).toEqual(
      selector(
        { name: 'a', operator: '=', value: '1' },
        { name: 'b', operator: '!=', value: '2' },
        { name: 'c', operator: '=~', value: '3' },
        { name: 'd', operator: '!~', value: '4' },
        cpu,
      ),
    );
    expect(parseQuery('{__name__="cpu_load"}')).toEqual(selector(cpu));
  });

  it('reads offsets, ranges and range functions', () => {
    expect(parseQuery('cpu_load offset -1m')).toEqual({ ...selector(cpu), offsetMs: -60_000 });
    expect(parseQuery('quantile_over_time(0.9, cpu_load[1h30m] offset 5m)')).toEqual({
      kind: 'rangeFunction',
      func: 'quantile_over_time',
      param: { kind: 'number', value: 0.9 },
      range: {
        kind: 'matrixSelector',
        selector: { ...selector(cpu), offsetMs: 300_000 },
        rangeMs: 5_400_000,
      },
    });
    for (const func of ['min', 'max', 'avg', 'sum', 'count', 'last']) {
      expect(parseQuery(`${func}_over_time(cpu_load[5m])`)).toMatchObject({
        kind: 'rangeFunction',
        func: `${func}_over_time`,
      });
    }
  });

  it('reads aggregations with the grouping clause before or after the argument', () => {
    const expected = {
      kind: 'aggregation',
      op: 'sum',
      param: undefined,
      expr: selector(cpu),
      grouping: { mode: 'by', labels: ['a', 'b'] },
    };
    expect(parseQuery('sum by (a, b) (cpu_load)')).toEqual(expected);
    expect(parseQuery('sum(cpu_load) by (a, b)')).toEqual(expected);
    expect(parseQuery('avg without (a) (cpu_load)')).toMatchObject({
      op: 'avg',
      grouping: { mode: 'without', labels: ['a'] },
    });
    expect(parseQuery('count(cpu_load)')).toMatchObject({
      op: 'count',
      grouping: { mode: 'by', labels: [] },
    });
    expect(parseQuery('topk(3, cpu_load)')).toMatchObject({
      op: 'topk',
      param: { kind: 'number', value: 3 },
    });
    expect(parseQuery('bottomk by (a) (3, cpu_load)')).toMatchObject({
      op: 'bottomk',
      grouping: { labels: ['a'] },
    });
    expect(parseQuery('quantile(0.5, cpu_load)')).toMatchObject({
      op: 'quantile',
      param: { kind: 'number', value: 0.5 },
    });
  });

  it('gives unary minus a lower precedence than ^, as Prometheus does', () => {
    expect(parseQuery('-2 ^ 2')).toEqual({
      kind: 'unary',
      op: '-',
      expr: {
        kind: 'binary',
        op: '^',
        lhs: { kind: 'number', value: 2 },
        rhs: { kind: 'number', value: 2 },
        returnBool: false,
      },
    });
  });

  it('reads comparisons with bool and the instant functions', () => {
    expect(parseQuery('cpu_load > bool 1')).toMatchObject({ kind: 'binary', op: '>', returnBool: true });
    expect(parseQuery('1 < cpu_load')).toMatchObject({ kind: 'binary', op: '<', returnBool: false });
    expect(parseQuery('vector(time())')).toEqual({
      kind: 'instantFunction',
      func: 'vector',
      args: [{ kind: 'instantFunction', func: 'time', args: [] }],
    });
    expect(parseQuery('scalar(cpu_load)')).toMatchObject({ kind: 'instantFunction', func: 'scalar' });
  });

  it.each([
    ['rate(cpu_load[5m])', 'function "rate"'],
    ['stddev(cpu_load)', 'aggregation "stddev"'],
    ['count_values("v", cpu_load)', 'aggregation "count_values"'],
    ['cpu_load and concurrency', 'binary operator "and"'],
    ['cpu_load or concurrency', 'binary operator "or"'],
    ['cpu_load + concurrency', 'vector-to-vector binary operations'],
    ['cpu_load + on(source) concurrency', 'vector matching modifier "on(source)"'],
    ['max_over_time(cpu_load[5m:1m])', 'subquery'],
    ['cpu_load @ 1700000000', '@ modifier'],
    ['cpu_load[5m]', 'range vector as a query result'],
    ['max_over_time(cpu_load[5m+1m])', 'duration expression "5m+1m"'],
    ['{"cpu_load"}', 'quoted label name'],
  ])('refuses %s as unsupported', (query, construct) => {
    const error = refusal(query);
    expect(error.type).toBe('bad_data');
    expect(error.message).toContain('unsupported in this service');
    expect(error.message).toContain(construct);
  });

  it.each([
    ['sum(', '1:5: parse error: unexpected end of input'],
    ['cpu_load{', '1:10: parse error: unexpected end of input'],
    ['sum by (a) (x) by (b)', '1:16: parse error: unexpected "by"'],
    ['foo(cpu_load)', '1:1: parse error: unknown function with name "foo"'],
    ['', '1:1: parse error: no expression found in input'],
    ['5m', '1:1: parse error: unexpected duration "5m"'],
    ['cpu_load offset 5', '1:17: parse error: unexpected number "5" in offset, expected duration'],
    ['sum(1)', '1:5: parse error: expected type instant vector in aggregation expression, got scalar'],
    ['topk("a", cpu_load)', '1:6: parse error: expected type scalar in aggregation parameter, got string'],
    [
      'max_over_time(cpu_load)',
      '1:15: parse error: expected type range vector in call to function "max_over_time", got instant vector',
    ],
    ['vector(1, 2)', '1:1: parse error: expected 1 argument(s) in call to "vector", got 2'],
    ['1 > 2', '1:3: parse error: comparisons between scalars must use BOOL modifier'],
    ['1 + bool 2', '1:3: parse error: bool modifier can only be used on comparison operators'],
    ['{}', '1:1: parse error: vector selector must contain at least one non-empty matcher'],
    ['cpu_load{__name__="x"}', '1:1: parse error: metric name must not be set twice: "cpu_load" or "x"'],
    ['cpu_load{a=~"("}', '1:13: parse error: error parsing regexp'],
    [
      '-"a"',
      '1:1: parse error: unary expression only allowed on expressions of type scalar or instant vector, got "string"',
    ],
    ['cpu_load offset 1m offset 2m', '1:1: parse error: offset may not be set multiple times'],
  ])('reports the syntax error of %j', (query, message) => {
    const error = refusal(query);
    expect(error.type).toBe('bad_data');
    expect(error.message).toContain(message);
  });
});
