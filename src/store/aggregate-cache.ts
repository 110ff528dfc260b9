import { LRUCache } from 'lru-cache';

/**
 * Heap bytes one remembered answer takes, with its key, revision and the cache's bookkeeping
 * (measured on Node 20 with --expose-gc, rounded up): a summary, and a series plus each bucket.
 */
export const ESTIMATED_BYTES = { summary: 1600, series: 900, seriesBucket: 400 } as const;

/** An answer and the revision of `metrics_revision` in the snapshot it was computed from. */
export interface AtRevision<T> {
  revision: string;
  value: T;
}

interface Entry {
  revision: string;
  value: unknown;
}

/**
 * Remembers aggregate answers (summaries, series) under the revision of the data they were
 * computed from. Every statement that writes to `metrics` gives `metrics_revision` a new random
 * revision in its own transaction (a trigger, see the migration), so an answer computed at the
 * current revision is the answer a new computation would give: every request reads the current
 * revision first, and a remembered answer is only reused while it is still current. Writes from
 * anywhere (the ingest script, psql, another instance) are seen at once; nothing expires by time.
 * Revisions are random, never counted, so a restored backup cannot bring back a revision that
 * names other rows.
 *
 * Identical questions asked while one is being computed share that computation.
 */
export class AggregateCache {
  readonly #entries: LRUCache<string, Entry> | undefined;
  readonly #inFlight = new Map<string, Promise<unknown>>();
  readonly #currentRevision: () => Promise<string>;

  /**
   * `maxBytes`: the total `size` of the answers kept; 0 computes every answer afresh.
   * `currentRevision`: reads the revision of the data now.
   */
  constructor(maxBytes: number, currentRevision: () => Promise<string>) {
    this.#entries = maxBytes > 0 ? new LRUCache({ maxSize: maxBytes }) : undefined;
    this.#currentRevision = currentRevision;
  }

  /**
   * The answer for `key`: remembered if it was computed at the current revision, else `compute()`d
   * and remembered under the revision its snapshot saw. `size` estimates the answer's bytes
   * (see `ESTIMATED_BYTES`).
   */
  async get<T>(key: string, compute: () => Promise<AtRevision<T>>, size: (value: T) => number): Promise<T> {
    const entries = this.#entries;
    if (!entries) return (await compute()).value;
    const revision = await this.#currentRevision();
    const entry = entries.get(key);
    if (entry?.revision === revision) return entry.value as T;

    // Keyed by revision too: a request that saw a newer revision must not share an older computation.
    const flightKey = `${revision}:${key}`;
    let flight = this.#inFlight.get(flightKey) as Promise<T> | undefined;
    if (!flight) {
      flight = compute()
        .then(({ revision: computedAt, value }) => {
          entries.set(key, { revision: computedAt, value }, { size: size(value) });
          return value;
        })
        .finally(() => this.#inFlight.delete(flightKey));
      this.#inFlight.set(flightKey, flight);
    }
    return flight;
  }
}
