import { loadavg } from 'node:os';
import type { Meter } from '@opentelemetry/api';
import { buildInfo } from './build-info.js';

/** Counts of one ingest call, as the store reports them. */
export interface IngestCounts {
  inserted: number;
  updated: number;
  duplicates: number;
  rejected: number;
}

/** How long a count of the sources stands for scrapes: it is a query, and the number changes slowly. */
const SOURCE_COUNT_TTL_MS = 10_000;

/**
 * The service's own metrics that no library gives: rows ingested through the mutation by outcome,
 * the number of sources (with `sources`), the build, the process's CPU time (runtime-node gives
 * event-loop, GC and heap) and its host's load average, by its semantic-convention name: pushed
 * over OTLP to a metrics-api (this one, even), it is the host's CPU load.
 */
export class ServiceMetrics {
  readonly #ingestRows;

  constructor(meter: Meter, sources?: { count(): Promise<number> }) {
    this.#ingestRows = meter.createCounter('metrics_api.ingest.rows', {
      unit: '{row}',
      description: 'Samples received by the ingestMetrics mutation, by outcome.',
    });
    meter
      .createObservableGauge('metrics_api.build.info', {
        description: 'Always 1; the labels name the build.',
      })
      .addCallback((result) => result.observe(1, { version: buildInfo.version, commit: buildInfo.commit }));
    meter
      .createObservableCounter('process.cpu.time', { unit: 's', description: 'CPU time of this process.' })
      .addCallback((result) => {
        const usage = process.cpuUsage();
        result.observe(usage.user / 1e6, { 'cpu.mode': 'user' });
        result.observe(usage.system / 1e6, { 'cpu.mode': 'system' });
      });
    meter
      .createObservableGauge('system.cpu.load_average.1m', {
        unit: '{run_queue_item}',
        description: "The host's load average over the last minute.",
      })
      .addCallback((result) => result.observe(loadavg()[0] as number));
    if (sources) {
      const count = remembered(SOURCE_COUNT_TTL_MS, () => sources.count());
      meter
        .createObservableGauge('metrics_api.sources', {
          unit: '{source}',
          description: 'Sources that exist (writers make them; MAX_SOURCES bounds them).',
        })
        .addCallback(async (result) => {
          // A database away leaves the gauge out of the scrape rather than failing it.
          const sourceCount = await count().catch(() => undefined);
          if (sourceCount !== undefined) result.observe(sourceCount);
        });
    }
  }

  ingested(counts: IngestCounts): void {
    this.#ingestRows.add(counts.inserted, { outcome: 'inserted' });
    this.#ingestRows.add(counts.updated, { outcome: 'updated' });
    this.#ingestRows.add(counts.duplicates, { outcome: 'duplicate' });
    this.#ingestRows.add(counts.rejected, { outcome: 'rejected' });
  }
}

/** `read`'s answer, asked again only once `ttlMs` have passed since it was (one question at a time). */
function remembered<T>(ttlMs: number, read: () => Promise<T>): () => Promise<T> {
  let answer: Promise<T> | undefined;
  let askedAt = 0;
  return () => {
    const now = performance.now();
    if (!answer || now - askedAt > ttlMs) {
      askedAt = now;
      answer = read();
      // A failure is not remembered: the next scrape asks again.
      answer.catch(() => {
        answer = undefined;
      });
    }
    return answer;
  };
}
