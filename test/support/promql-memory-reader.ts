// A SeriesReader over series held in memory, selecting exactly as the SeriesReader contract says.
import {
  type Matcher,
  MINUTE_MS,
  type RawSeries,
  type SeriesReader,
  seriesFilter,
} from '../../src/promql/index.js';

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

/**
 * memoryReader that also answers selectMinutes, as the store does from its minute rollups: each
 * series' statistics by minute, and its samples exactly at the instants asked.
 */
export function minuteReader(
  dataset: readonly RawSeries[],
): RecordingReader & Required<Pick<SeriesReader, 'selectMinutes'>> {
  const reader = memoryReader(dataset);
  return {
    ...reader,
    async selectMinutes(matchers, startMs, endMs, instants) {
      const matches = seriesFilter(matchers);
      const wanted = new Set(instants);
      return dataset
        .filter((series) => matches(series.labels))
        .map((series) => {
          const minutes: number[] = [];
          const counts: number[] = [];
          const sums: number[] = [];
          const mins: number[] = [];
          const maxs: number[] = [];
          const exact = { timestamps: [] as number[], values: [] as number[] };
          series.timestamps.forEach((t, i) => {
            const value = series.values[i] as number;
            if (wanted.has(t)) {
              exact.timestamps.push(t);
              exact.values.push(value);
            }
            const minute = Math.floor(t / MINUTE_MS) * MINUTE_MS;
            if (minute < startMs || minute >= endMs) return;
            const last = minutes.length - 1;
            if (minutes[last] === minute) {
              counts[last] = (counts[last] as number) + 1;
              sums[last] = (sums[last] as number) + value;
              mins[last] = Math.min(mins[last] as number, value);
              maxs[last] = Math.max(maxs[last] as number, value);
            } else {
              minutes.push(minute);
              counts.push(1);
              sums.push(value);
              mins.push(value);
              maxs.push(value);
            }
          });
          return { labels: series.labels, minutes, counts, sums, mins, maxs, exact };
        });
    },
  };
}
