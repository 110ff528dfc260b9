// A SeriesReader over series held in memory, selecting exactly as the SeriesReader contract says.
import { type Matcher, type RawSeries, type SeriesReader, seriesFilter } from '../../src/promql/index.js';

export interface RecordingReader extends SeriesReader {
  /** Every select call, in order: what the evaluator asked storage for. */
  readonly calls: Array<{ matchers: readonly Matcher[]; startMs: number; endMs: number }>;
}

export function memoryReader(dataset: readonly RawSeries[]): RecordingReader {
  const calls: RecordingReader['calls'] = [];
  return {
    calls,
    async select(matchers, startMs, endMs) {
      calls.push({ matchers, startMs, endMs });
      const matches = seriesFilter(matchers);
      return dataset
        .filter((series) => matches(series.labels))
        .map((series) => {
          const timestamps: number[] = [];
          const values: number[] = [];
          series.timestamps.forEach((t, i) => {
            if (t < startMs || t > endMs) return;
            timestamps.push(t);
            values.push(series.values[i] as number);
          });
          return { labels: series.labels, timestamps, values };
        });
    },
  };
}
