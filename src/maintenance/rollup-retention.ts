import type { Logger } from '../observability/logger.js';
import type { DroppedRollups, RollupStore } from '../store/rollup-store.js';

export interface RollupRetentionSettings {
  minuteRetentionSeconds: number;
  /** Undefined keeps hour rollups. */
  hourRetentionSeconds: number | undefined;
  intervalSeconds: number;
}

/**
 * Drops rollups past their retention every `intervalSeconds` (MAINTENANCE_INTERVAL), first once
 * at start, having folded the parts of hour and day keys that writes left (RollupStore.fold), so
 * a key's parts never outlive a pass. A failed run is logged and the next one tries again.
 */
export class RollupRetention {
  readonly #store: Pick<RollupStore, 'fold' | 'dropOld'>;
  readonly #settings: RollupRetentionSettings;
  readonly #logger: Logger;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;

  constructor(
    store: Pick<RollupStore, 'fold' | 'dropOld'>,
    settings: RollupRetentionSettings,
    logger: Logger,
  ) {
    this.#store = store;
    this.#settings = settings;
    this.#logger = logger;
  }

  /** One run: what it dropped, counted from `now`. */
  async run(now = new Date()): Promise<DroppedRollups> {
    const { minuteRetentionSeconds, hourRetentionSeconds } = this.#settings;
    const before = (seconds: number) => new Date(now.getTime() - seconds * 1000);
    await this.#store.fold();
    const dropped = await this.#store.dropOld({
      minutesBefore: before(minuteRetentionSeconds),
      ...(hourRetentionSeconds === undefined ? {} : { hoursBefore: before(hourRetentionSeconds) }),
    });
    if (dropped.minute + dropped.hour > 0)
      this.#logger.info({ dropped }, 'Rollup retention dropped old rollups');
    return dropped;
  }

  start(): void {
    const tick = () => {
      this.#running = this.run().then(
        () => undefined,
        (error: unknown) => this.#logger.warn({ err: error }, 'Rollup retention failed; it runs again later'),
      );
    };
    tick();
    this.#timer = setInterval(tick, this.#settings.intervalSeconds * 1000);
    // Maintenance never keeps the process alive by itself.
    this.#timer.unref();
  }

  /** Stops the schedule and waits for a run in progress. */
  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await this.#running;
  }
}
