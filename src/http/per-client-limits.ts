import type { Plugin } from 'graphql-yoga';
import type { Config } from '../config.js';
import type { ExpensiveWork } from '../graphql/expensive-work.js';
import { clientAddress } from './client-address.js';

interface ClientState {
  running: number;
  /** Work waiting for one of the client's slots, first come first served. */
  waiting: (() => void)[];
}

/**
 * A few slots per client: work past them waits for one of the same client's slots to free, so a
 * client flooding the service queues behind itself and leaves the database pool to the others.
 * A client is forgotten as soon as it has nothing running, so the clients kept are at most the
 * requests in flight.
 */
export class ClientSlots {
  readonly #clients = new Map<string, ClientState>();

  constructor(readonly perClient: number) {}

  async run<T>(client: string, work: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    await this.#acquire(client, signal);
    try {
      return await work();
    } finally {
      this.#release(client);
    }
  }

  /** Work running and waiting for `client`, for tests and diagnostics. */
  usage(client: string): { running: number; waiting: number } {
    const state = this.#clients.get(client);
    return { running: state?.running ?? 0, waiting: state?.waiting.length ?? 0 };
  }

  #acquire(client: string, signal: AbortSignal | undefined): Promise<void> | undefined {
    let state = this.#clients.get(client);
    if (!state) {
      state = { running: 0, waiting: [] };
      this.#clients.set(client, state);
    }
    if (state.running < this.perClient) {
      state.running++;
      return undefined;
    }
    const { waiting } = state;
    return new Promise<void>((resolve, reject) => {
      // A request its client gave up on stops waiting: its place would otherwise hold a slot for nothing.
      const abandon = () => {
        const at = waiting.indexOf(start);
        if (at >= 0) waiting.splice(at, 1);
        reject(signal?.reason);
      };
      const start = () => {
        signal?.removeEventListener('abort', abandon);
        resolve();
      };
      if (signal?.aborted) return abandon();
      signal?.addEventListener('abort', abandon, { once: true });
      waiting.push(start);
    });
  }

  #release(client: string): void {
    const state = this.#clients.get(client);
    if (!state) return;
    const next = state.waiting.shift();
    // The slot passes straight to the next waiting work, which keeps the count.
    if (next) {
      next();
      return;
    }
    state.running--;
    if (state.running === 0) this.#clients.delete(client);
  }
}

/**
 * Gives every operation's resolvers `expensive`, which runs work that reads much of the database
 * (uncached summaries and series, totalCount, nodes) in one of MAX_EXPENSIVE_PER_CLIENT slots of
 * the client that sent the request (see clientAddress).
 */
export function usePerClientLimits(
  config: Pick<Config, 'limits' | 'http'>,
  slots = new ClientSlots(config.limits.expensivePerClient),
): Plugin {
  const header = config.http.clientAddressHeader;
  return {
    onContextBuilding({ context, extendContext }) {
      const { request } = context;
      const client = clientAddress(request, context as Parameters<typeof clientAddress>[1], header);
      const expensive: ExpensiveWork = (work) => slots.run(client, work, request.signal);
      extendContext({ expensive } as Partial<typeof context>);
    },
  };
}
