import type { Meter } from '@opentelemetry/api';
import { buildInfo } from './build-info.js';

/** Counts of one ingest call, as the store reports them. */
export interface IngestCounts {
  inserted: number;
  updated: number;
  duplicates: number;
  rejected: number;
}

/**
 * The service's own metrics that no library gives: rows ingested through the mutation by outcome,
 * the build, and the process's CPU time (runtime-node gives event-loop, GC and heap).
 */
export class ServiceMetrics {
  readonly #ingestRows;

  constructor(meter: Meter) {
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
  }

  ingested(counts: IngestCounts): void {
    this.#ingestRows.add(counts.inserted, { outcome: 'inserted' });
    this.#ingestRows.add(counts.updated, { outcome: 'updated' });
    this.#ingestRows.add(counts.duplicates, { outcome: 'duplicate' });
    this.#ingestRows.add(counts.rejected, { outcome: 'rejected' });
  }
}
