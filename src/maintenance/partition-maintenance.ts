import type { Logger } from '../observability/logger.js';
import type { MaintenanceResult, PartitionManager } from '../store/metric-partitions.js';
import type { MetricStore } from '../store/metric-store.js';

/** Partitions made ahead of now at every pass (pg_partman's own default). */
export const PREMAKE = 4;

export interface PartitionMaintenanceOptions {
  sizeSeconds: number;
  retentionSeconds: number | undefined;
  intervalMs: number;
  logger: Logger;
}

/**
 * The schedule of partition maintenance: a pass at start, then one every MAINTENANCE_INTERVAL.
 * Which engine makes and drops partitions is decided once, at start (see MetricPartitions): with
 * pg_partman missing there is one warning, and the service makes partitions ahead itself. A pass
 * that fails (the database away, a lock not granted) is logged and the next one tries again;
 * nothing here stops the service.
 */
export class PartitionMaintenance {
  readonly #store: Pick<MetricStore, 'partitions' | 'refreshPartitions'>;
  readonly #options: PartitionMaintenanceOptions;
  #manager: PartitionManager | undefined;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<MaintenanceResult | undefined> | undefined;

  constructor(
    store: Pick<MetricStore, 'partitions' | 'refreshPartitions'>,
    options: PartitionMaintenanceOptions,
  ) {
    this.#store = store;
    this.#options = options;
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
      });
      await this.#store.refreshPartitions();
      if (result.created.length > 0 || result.dropped.length > 0) {
        logger.info(
          { created: result.created, dropped: result.dropped.map((partition) => partition.name) },
          'Partitions of metrics maintained',
        );
      }
      if (result.partmanSizeSeconds !== undefined) {
        logger.warn(
          { partitionSizeSeconds: sizeSeconds, partmanSizeSeconds: result.partmanSizeSeconds },
          'PARTITION_SIZE differs from the size pg_partman was given the table with; pg_partman keeps its own (change it in partman.part_config with care: partitions must not overlap)',
        );
      }
      if (result.defaultRows > 0) {
        logger.warn(
          { rows: result.defaultRows },
          'metrics_default holds rows whose time had no partition: make partitions for their range with `npm run partitions`, which moves them in',
        );
      }
      return result;
    } catch (error) {
      logger.warn({ err: error }, 'Partition maintenance failed; the next pass tries again');
      return undefined;
    }
  }

  async #decideManager(): Promise<PartitionManager> {
    const manager = await this.#store.partitions.manager();
    const { logger, retentionSeconds } = this.#options;
    if (manager.kind === 'service') {
      logger.warn(
        { reason: manager.reason, retention: retentionSeconds === undefined ? 'unset' : 'not applied' },
        `pg_partman is unavailable (${manager.reason}): the service makes partitions ahead itself and rows with no partition go to metrics_default; RETENTION drops nothing without pg_partman`,
      );
    } else {
      logger.info({ schema: manager.schema }, 'pg_partman manages the partitions of metrics');
    }
    this.#manager = manager;
    return manager;
  }

  /** No pass after this; a pass under way is finished first. */
  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await this.#running;
  }
}
