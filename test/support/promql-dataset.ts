// A deterministic synthetic data set shaped like the service's own: cpu_load and concurrency per
// source, sampled every 15 s for two hours, with the irregularities PromQL semantics hinge on.
import type { RawSeries } from '../../src/promql/index.js';

/** First sample of the data set (ms); a round number so query times in the tests read easily. */
export const DATASET_START_MS = 1_700_000_000_000;
export const SCRAPE_INTERVAL_MS = 15_000;
export const DATASET_END_MS = DATASET_START_MS + 2 * 60 * 60 * 1000;

const MINUTE = 60_000;

interface SourceShape {
  labels: Record<string, string>;
  /** Minutes after DATASET_START_MS of the first sample. */
  startsAtMinute: number;
  /** Half-open [from, to) minute ranges with no samples. */
  gaps: Array<[number, number]>;
  metrics: Array<'cpu_load' | 'concurrency'>;
}

const SOURCES: SourceShape[] = [
  {
    labels: { source: 'web-1', region: 'eu', tier: 'web' },
    startsAtMinute: 0,
    gaps: [],
    metrics: ['cpu_load', 'concurrency'],
  },
  // A gap longer than the 5 min lookback, and a short one inside it.
  {
    labels: { source: 'web-2', region: 'us', tier: 'web' },
    startsAtMinute: 0,
    gaps: [
      [40, 52],
      [80, 83],
    ],
    metrics: ['cpu_load', 'concurrency'],
  },
  {
    labels: { source: 'db-1', region: 'eu', tier: 'db' },
    startsAtMinute: 0,
    gaps: [[100, 107]],
    metrics: ['cpu_load', 'concurrency'],
  },
  // Starts late: the first hour has no samples at all.
  {
    labels: { source: 'db-2', region: 'us', tier: 'db' },
    startsAtMinute: 61,
    gaps: [],
    metrics: ['cpu_load', 'concurrency'],
  },
  // No tier label, cpu_load only: grouping by a label some series lack.
  {
    labels: { source: 'batch-1', region: 'eu' },
    startsAtMinute: 30,
    gaps: [[70, 90]],
    metrics: ['cpu_load'],
  },
];

/** A small linear congruential generator, so every run (and both engines) see the same values. */
function randomSequence(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1_664_525) + 1_013_904_223) >>> 0;
    return state / 2 ** 32;
  };
}

function valueSeries(metric: 'cpu_load' | 'concurrency', random: () => number, count: number): number[] {
  const values: number[] = [];
  let previous = 0;
  for (let i = 0; i < count; i++) {
    // Runs of repeated values, as an idle host reports.
    if (i > 0 && random() < 0.2) {
      values.push(previous);
      continue;
    }
    previous =
      metric === 'cpu_load'
        ? Math.round(random() * 4_000) / 1_000 + (i % 7) * 0.1
        : Math.floor(random() * 50);
    values.push(previous);
  }
  return values;
}

function build(): RawSeries[] {
  const series: RawSeries[] = [];
  let seed = 7;
  for (const metric of ['cpu_load', 'concurrency'] as const) {
    for (const source of SOURCES) {
      if (!source.metrics.includes(metric)) continue;
      const timestamps: number[] = [];
      for (
        let t = DATASET_START_MS + source.startsAtMinute * MINUTE;
        t <= DATASET_END_MS;
        t += SCRAPE_INTERVAL_MS
      ) {
        const minute = (t - DATASET_START_MS) / MINUTE;
        if (source.gaps.some(([from, to]) => minute >= from && minute < to)) continue;
        timestamps.push(t);
      }
      const values = valueSeries(metric, randomSequence(seed++), timestamps.length);
      series.push({ labels: { __name__: metric, ...source.labels }, timestamps, values });
    }
  }
  return series;
}

export const DATASET: readonly RawSeries[] = build();

/** The data set as OpenMetrics text for `promtool tsdb create-blocks-from openmetrics` (seconds, `# EOF`). */
export function datasetAsOpenMetrics(): string {
  const lines: string[] = [];
  for (const metric of ['cpu_load', 'concurrency']) {
    lines.push(`# TYPE ${metric} gauge`);
    for (const series of DATASET.filter((s) => s.labels.__name__ === metric)) {
      const labelText = Object.entries(series.labels)
        .filter(([name]) => name !== '__name__')
        .map(([name, value]) => `${name}="${value}"`)
        .join(',');
      series.timestamps.forEach((t, i) => {
        lines.push(`${metric}{${labelText}} ${series.values[i]} ${t / 1000}`);
      });
    }
  }
  lines.push('# EOF', '');
  return lines.join('\n');
}
