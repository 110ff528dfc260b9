import pg from 'pg';
import { within } from './availability.js';

/** How a probe connection shows in pg_stat_activity. */
export const PROBE_APPLICATION_NAME = 'metrics-api readiness';

/**
 * One connection of its own, outside the pool, that readiness asks whether the server answers: a
 * pool busy with long statements (or waiting for its connection timeout) says nothing about
 * whether the database is reachable, and readiness must not fail with it on every instance at once.
 *
 * It connects on the first probe, and again on the next probe after it was lost (an 'error' or
 * 'end' from the server going away, heard here so that it never crashes the process) or after a
 * probe did not answer in time (a half-open link would otherwise hold every later probe). Probes
 * asking the same statement while one is in flight share its answer: one probe at a time, however
 * many requests ask.
 */
export class ProbeConnection {
  readonly #config: pg.ClientConfig;
  #client: Promise<pg.Client> | undefined;
  readonly #inFlight = new Map<string, Promise<unknown[] | undefined>>();

  /** `config`: the pool's (connection string, connect timeout, options), without its size. */
  constructor(config: pg.ClientConfig) {
    this.#config = { ...config, application_name: PROBE_APPLICATION_NAME, keepAlive: true };
  }

  /** The first row of `text`, as an array, within `timeoutMs` (connecting included), or the failure. */
  query<Row extends unknown[]>(text: string, timeoutMs: number, describe: string): Promise<Row | undefined> {
    let probe = this.#inFlight.get(text);
    if (!probe) {
      probe = this.#run(text, timeoutMs, describe).finally(() => this.#inFlight.delete(text));
      this.#inFlight.set(text, probe);
    }
    return probe as Promise<Row | undefined>;
  }

  async #run(text: string, timeoutMs: number, describe: string): Promise<unknown[] | undefined> {
    const client = this.#connected();
    try {
      const result = await within(
        client.then((connected) => connected.query<unknown[]>({ text, rowMode: 'array' })),
        timeoutMs,
        () => new Error(`${describe} did not answer within ${timeoutMs} ms`),
      );
      return result.rows[0];
    } catch (error) {
      this.#drop(client);
      throw error;
    }
  }

  #connected(): Promise<pg.Client> {
    if (this.#client) return this.#client;
    const client = new pg.Client(this.#config);
    const connecting = client.connect().then(() => client);
    this.#client = connecting;
    const lost = () => this.#drop(connecting);
    client.on('error', lost);
    client.on('end', lost);
    // A failed connect is reported by the probe that waits for it.
    connecting.catch(lost);
    return connecting;
  }

  /** Forgets `client` (if it is still the current one) and closes it; the next probe connects anew. */
  #drop(client: Promise<pg.Client>): void {
    if (this.#client !== client) return;
    this.#client = undefined;
    client.then((connected) => connected.end()).catch(() => {});
  }

  async close(): Promise<void> {
    const client = this.#client;
    this.#client = undefined;
    await client?.then((connected) => connected.end()).catch(() => {});
  }
}
