import type { Meter } from '@opentelemetry/api';
import type { Logger } from '../observability/logger.js';
import type { DefaultRows, MaintenanceResult, PartitionManager } from '../store/metric-partitions.js';
import type { MetricStore } from '../store/metric-store.js';

/** Partitions made ahead of now at every pass (pg_partman's own default). */
export const PREMAKE = 4;

export interface PartitionMaintenanceOptions {
  sizeSeconds: number;
  retentionSeconds: number | undefined;
  intervalMs: number;
  /** Bounds on one pass (config.maintenance). */
  lockTimeoutMs: number;
  statementTimeoutMs: number;
  maxPartitionsPerPass: number;
  logger: Logger;
  /** Where the rows of the default partition are reported (metrics_api.partition.default_rows). */
  meter?: Meter | undefined;
}

/**
 * The schedule of partition maintenance: a pass at start, then one every MAINTENANCE_INTERVAL.
 * Which engine drops partitions is decided at the first pass (see MetricPartitions), and again at
 * each pass while pg_partman is unavailable: with it missing there is a warning for each distinct
 * reason, and retention does nothing. A pass is bounded (MAINTENANCE_MAX_PARTITIONS partitions, each in a transaction of
 * its own under MAINTENANCE_LOCK_TIMEOUT_MS and MAINTENANCE_STATEMENT_TIMEOUT_MS); what it leaves,
 * and any step that failed, the next pass goes on with. A pass that fails (the database away) is
 * logged and the next one tries again; nothing here stops the service.
 */
export class PartitionMaintenance {
  readonly #store: Pick<MetricStore, 'partitions' | 'refreshPartitions'>;
  readonly #options: PartitionMaintenanceOptions;
  #manager: PartitionManager | undefined;
  /** The reason pg_partman was unavailable when last warned about, so that it is warned once. */
  #warnedReason: string | undefined;
  /** As of the last pass that counted them; undefined before. */
  #defaultRows: DefaultRows | undefined;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<MaintenanceResult | undefined> | undefined;

  constructor(
    store: Pick<MetricStore, 'partitions' | 'refreshPartitions'>,
    options: PartitionMaintenanceOptions,
  ) {
    this.#store = store;
    this.#options = options;
    options.meter
      ?.createObservableGauge('metrics_api.partition.default_rows', {
        unit: '{row}',
        description:
          'Rows in the default partition of metrics (their time had no partition when written), as of the last maintenance pass; exact up to a million, estimated beyond.',
      })
      .addCallback((result) => {
        if (this.#defaultRows) result.observe(this.#defaultRows.count);
      });
  }

  /**
   * Starts the first pass and schedules the next ones. Nothing waits for the first pass: a row
   * with no partition yet goes to the default partition, so serving need not wait for a pass
   * that may queue behind another instance's or behind a lock a long query holds.
   */
  start(): void {
    void this.runOnce();
    this.#timer = setInterval(() => void this.runOnce(), this.#options.intervalMs);
    // The server keeps the process alive; the schedule alone must not.
    this.#timer.unref();
  }

  /** One pass now (a pass already running is waited for instead); undefined if it failed. */
  runOnce(): Promise<MaintenanceResult | undefined> {
    this.#running ??= this.#pass().finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  async #pass(): Promise<MaintenanceResult | undefined> {
    const { logger, sizeSeconds, retentionSeconds } = this.#options;
    try {
      const manager = this.#manager ?? (await this.#decideManager());
      const result = await this.#store.partitions.maintain(manager, {
        sizeSeconds,
        retentionSeconds,
        premake: PREMAKE,
        maxPartitions: this.#options.maxPartitionsPerPass,
        lockTimeoutMs: this.#options.lockTimeoutMs,
        statementTimeoutMs: this.#options.statementTimeoutMs,
      });
      this.#defaultRows = result.defaultRows;
      await this.#store.refreshPartitions();
      if (result.created.length > 0 || result.dropped.length > 0) {
        logger.info(
          { created: result.created, dropped: result.dropped.map((partition) => partition.name) },
          'Partitions of metrics maintained',
        );
      }
      if (result.deferred > 0) {
        logger.info(
          { deferred: result.deferred, maxPartitionsPerPass: this.#options.maxPartitionsPerPass },
          'Partition maintenance reached MAINTENANCE_MAX_PARTITIONS; the next pass goes on',
        );
      }
      if (result.failed.length > 0) {
        logger.warn(
          { failed: result.failed },
          'Partition maintenance left partitions it could not make or drop in time (MAINTENANCE_LOCK_TIMEOUT_MS, MAINTENANCE_STATEMENT_TIMEOUT_MS); the next pass tries again',
        );
      }
      if (result.partmanSizeSeconds !== undefined) {
        logger.warn(
          { partitionSizeSeconds: sizeSeconds, partmanSizeSeconds: result.partmanSizeSeconds },
          'PARTITION_SIZE differs from the size pg_partman was given the table with; pg_partman keeps its own (change it in partman.part_config with care: partitions must not overlap)',
        );
      }
      if (result.defaultRows.count > 0) {
        logger.warn(
          { rows: result.defaultRows.count, estimated: result.defaultRows.estimated },
          'metrics_default holds rows whose time has no partition yet: maintenance makes partitions for their ranges (MAINTENANCE_MAX_PARTITIONS a pass), or make them at once with `npm run partitions`, which moves them in',
        );
      }
      return result;
    } catch (error) {
      logger.warn({ err: error }, 'Partition maintenance failed; the next pass tries again');
      return undefined;
    }
  }

  /**
   * pg_partman, once found or created, for good; the service otherwise, asked again at the next
   * pass (pg_partman may be installed, or another instance may have created it, meanwhile).
   */
  async #decideManager(): Promise<PartitionManager> {
    const manager = await this.#store.partitions.manager();
    const { logger, retentionSeconds } = this.#options;
    if (manager.kind === 'service') {
      if (manager.reason !== this.#warnedReason) {
        this.#warnedReason = manager.reason;
        logger.warn(
          { reason: manager.reason, retention: retentionSeconds === undefined ? 'unset' : 'not applied' },
          `pg_partman is unavailable (${manager.reason}): the service makes partitions ahead itself and rows with no partition go to metrics_default; RETENTION drops nothing without pg_partman`,
        );
      }
      return manager;
    }
    logger.info({ schema: manager.schema }, 'pg_partman drops the partitions of metrics past RETENTION');
    this.#manager = manager;
    return manager;
  }

  /** No pass after this; a pass under way is finished first. */
  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await this.#running;
  }
}
