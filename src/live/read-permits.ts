/**
 * At most `max` reads at once, the others waiting their turn in order: the catch-up reads of
 * resuming subscriptions (LIVE_MAX_CATCHUP_READS). Two hundred streams replaying from the first
 * cursor otherwise took every pooled connection at once, and pages and readiness waited behind them.
 */
export class ReadPermits {
  readonly #max: number;
  #running = 0;
  readonly #waiting: (() => void)[] = [];

  constructor(max: number) {
    this.#max = max;
  }

  /** Reads running now, and waiting for a permit (the service's metrics). */
  get counts(): { running: number; waiting: number } {
    return { running: this.#running, waiting: this.#waiting.length };
  }

  /** `read` once a permit is free; the permit is returned when it settles. */
  async run<T>(read: () => Promise<T>): Promise<T> {
    if (this.#running >= this.#max) await new Promise<void>((resolve) => this.#waiting.push(resolve));
    else this.#running++;
    try {
      return await read();
    } finally {
      const next = this.#waiting.shift();
      // The permit passes straight to the next reader: #running stays as it is.
      if (next) next();
      else this.#running--;
    }
  }
}
