// The evaluator's contract with its SeriesReader and limits, which the conformance test (that
// compares answers only) does not see.
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_LOOKBACK_DELTA_MS,
  evaluateInstant,
  evaluateRange,
  PromQLError,
  parseQuery,
} from '../src/promql/index.js';
import { DATASET, DATASET_END_MS, DATASET_START_MS } from './support/promql-dataset.js';
import { memoryReader } from './support/promql-memory-reader.js';

const LIMITS = { maxSamples: 1_000_000, lookbackDeltaMs: DEFAULT_LOOKBACK_DELTA_MS };
const HOUR = 3_600_000;

async function failure(run: () => Promise<unknown>): Promise<PromQLError> {
  try {
    await run();
  } catch (error) {
    if (error instanceof PromQLError) return error;
    throw error;
  }
  throw new Error('no error');
}

describe('evaluation', () => {
  it('reads each selector once, over the widest window its steps need', async () => {
    const reader = memoryReader(DATASET);
    const start = DATASET_START_MS + HOUR;
    await evaluateRange(
      parseQuery('sum(cpu_load offset 1m) + scalar(max(max_over_time(concurrency[10m])))'),
      start,
      start + HOUR,
      60_000,
      reader,
      LIMITS,
    );
    expect(reader.calls).toEqual([
      {
        matchers: [{ name: '__name__', operator: '=', value: 'cpu_load' }],
        startMs: start - 60_000 - DEFAULT_LOOKBACK_DELTA_MS,
        endMs: start + HOUR - 60_000,
      },
      {
        matchers: [{ name: '__name__', operator: '=', value: 'concurrency' }],
        startMs: start - 600_000,
        endMs: start + HOUR,
      },
    ]);
  });

  it('refuses to load more samples than the limit allows, a series counting a value per step too', async () => {
    // One step: each series' samples, and its one value.
    const loaded = DATASET.filter((series) => series.labels.__name__ === 'cpu_load').reduce(
      (total, series) => total + series.timestamps.length + 1,
      0,
    );
    const query = parseQuery('max_over_time(cpu_load[3h])');
    const run = (maxSamples: number) =>
      evaluateInstant(query, DATASET_END_MS, memoryReader(DATASET), { ...LIMITS, maxSamples });
    await expect(run(loaded)).resolves.toMatchObject({ resultType: 'vector' });
    const error = await failure(() => run(loaded - 1));
    expect(error.type).toBe('execution');
    expect(error.message).toBe('query processing would load too many samples into memory in query execution');
  });

  it('refuses a range query whose series times steps pass the limit, before evaluating it', async () => {
    const query = parseQuery('cpu_load');
    const steps = 7201;
    const error = await failure(() =>
      evaluateRange(query, DATASET_END_MS - 7_200_000, DATASET_END_MS, 1000, memoryReader(DATASET), {
        ...LIMITS,
        maxSamples: 5 * steps,
      }),
    );
    expect(error.type).toBe('execution');
  });

  it('refuses range functions whose windows would scan far more than the samples read', async () => {
    const query = parseQuery('max_over_time(cpu_load[2h])');
    const error = await failure(() =>
      evaluateRange(query, DATASET_END_MS - 7_200_000, DATASET_END_MS, 1000, memoryReader(DATASET), {
        ...LIMITS,
        maxSamples: 50_000,
      }),
    );
    expect(error.message).toMatch(/would scan too many samples/);
  });

  it('steps by index: a start where floats are 16 s apart still ends', async () => {
    const start = 1e20;
    const data = await evaluateRange(parseQuery('1'), start, start, 1000, memoryReader([]), LIMITS);
    expect(data).toMatchObject({ resultType: 'matrix' });
  });

  it('answers 1+1 (Grafana’s health check) with a scalar', async () => {
    await expect(
      evaluateInstant(parseQuery('1+1'), 1_700_000_000_500, memoryReader([]), LIMITS),
    ).resolves.toEqual({
      resultType: 'scalar',
      result: [1_700_000_000.5, '2'],
    });
  });

  it('gives a range query of a scalar one series with no labels', async () => {
    await expect(
      evaluateRange(parseQuery('time()'), 0, 2_000, 1_000, memoryReader([]), LIMITS),
    ).resolves.toEqual({
      resultType: 'matrix',
      result: [
        {
          metric: {},
          values: [
            [0, '0'],
            [1, '1'],
            [2, '2'],
          ],
        },
      ],
    });
  });

  it.each([
    [0, 1_000, 0, 'zero or negative query resolution step widths are not accepted. Try a positive integer'],
    [1_000, 0, 1_000, 'end timestamp must not be before start time'],
    [0, 11_001_000, 1_000, 'exceeded maximum resolution of 11,000 points per timeseries'],
  ])('refuses the range %i..%i step %i', async (start, end, step, message) => {
    const error = await failure(() =>
      evaluateRange(parseQuery('1'), start, end, step, memoryReader([]), LIMITS),
    );
    expect(error.type).toBe('bad_data');
    expect(error.message).toContain(message);
  });

  it('refuses a string as a range query result', async () => {
    const error = await failure(() =>
      evaluateRange(parseQuery('"s"'), 0, 0, 1_000, memoryReader([]), LIMITS),
    );
    expect(error).toMatchObject({
      type: 'bad_data',
      message: expect.stringContaining('invalid expression type "string"'),
    });
  });
});
