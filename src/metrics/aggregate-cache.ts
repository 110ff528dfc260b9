import { LRUCache } from 'lru-cache';

/** An answer and the revision of `metrics_revision` in the snapshot it was computed from. */
export interface AtRevision<T> {
  revision: bigint | undefined;
  value: T;
}

interface Entry {
  revision: bigint;
  value: unknown;
}

/**
 * Remembers aggregate answers (summaries, series) under the revision of the data they were
 * computed from. The `metrics_revision` row changes in the same transaction as every write to
 * `metrics` (a trigger, see the migration), so an answer computed at the current revision is the
 * answer a new computation would give: every request reads the current revision first, and a
 * remembered answer is only reused while it is still current. Writes from anywhere (the ingest
 * script, psql, another instance) are seen at once; nothing expires by time.
 *
 * Identical questions asked while one is being computed share that computation.
 */
export class AggregateCache {
  readonly #entries: LRUCache<string, Entry> | undefined;
  readonly #inFlight = new Map<string, Promise<unknown>>();

  /** `maxRows`: the total `size` of the answers kept; 0 computes every answer afresh. */
  constructor(maxRows: number) {
    this.#entries = maxRows > 0 ? new LRUCache({ maxSize: maxRows }) : undefined;
  }

  /**
   * The answer for `key`: remembered if it was computed at `currentRevision()`, else `compute()`d
   * and remembered when its snapshot's revision is known. `size` counts the answer's rows.
   */
  async get<T>(
    key: string,
    currentRevision: () => Promise<bigint>,
    compute: () => Promise<AtRevision<T>>,
    size: (value: T) => number,
  ): Promise<T> {
    const entries = this.#entries;
    if (!entries) return (await compute()).value;
    const revision = await currentRevision();
    const entry = entries.get(key);
    if (entry?.revision === revision) return entry.value as T;

    // Keyed by revision too: a request that saw a newer revision must not wait for an older answer.
    const flightKey = `${revision}:${key}`;
    let flight = this.#inFlight.get(flightKey) as Promise<T> | undefined;
    if (!flight) {
      flight = compute()
        .then(({ revision: computedAt, value }) => {
          const latest = entries.peek(key);
          if (computedAt !== undefined && (!latest || latest.revision < computedAt)) {
            entries.set(key, { revision: computedAt, value }, { size: Math.max(1, size(value)) });
          }
          return value;
        })
        .finally(() => this.#inFlight.delete(flightKey));
      this.#inFlight.set(flightKey, flight);
    }
    return flight;
  }
}
