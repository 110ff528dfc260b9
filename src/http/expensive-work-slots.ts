import type { Plugin } from 'graphql-yoga';
import type { Config } from '../config.js';
import type { ExpensiveWork } from '../store/expensive-work.js';
import { clientAddress } from './client-address.js';

/** Work waiting for a slot, and what to do if its request is abandoned meanwhile. */
interface Waiter {
  start: () => void;
}

interface ClientState {
  running: number;
  /** The client's work waiting for a slot, first come first served. */
  waiting: Waiter[];
}

/**
 * Slots for expensive work, shared fairly between clients. At most `capacity` pieces of work run
 * at once (MAX_EXPENSIVE_OPERATIONS, below the pool's size: pages, writes and live reads keep
 * connections of their own). A client alone may use every slot; once others wait, a slot that
 * frees goes to the waiting client with the least work running (the longest waiting among
 * equals), so a client flooding the service queues behind itself and another client's work waits
 * for one slot to free at most, never for the flood. A client is forgotten as soon as it has
 * nothing running or waiting, so the clients kept are at most the requests in flight.
 */
export class ExpensiveWorkSlots {
  readonly #clients = new Map<string, ClientState>();
  #running = 0;

  constructor(readonly capacity: number) {}

  async run<T>(client: string, work: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    await this.#acquire(client, signal);
    try {
      return await work();
    } finally {
      this.#release(client);
    }
  }

  /** Work running and waiting for `client`, and running in all, for tests and diagnostics. */
  usage(client: string): { running: number; waiting: number; runningInAll: number } {
    const state = this.#clients.get(client);
    return { running: state?.running ?? 0, waiting: state?.waiting.length ?? 0, runningInAll: this.#running };
  }

  #stateOf(client: string): ClientState {
    let state = this.#clients.get(client);
    if (!state) {
      state = { running: 0, waiting: [] };
      this.#clients.set(client, state);
    }
    return state;
  }

  #acquire(client: string, signal: AbortSignal | undefined): Promise<void> | undefined {
    const state = this.#stateOf(client);
    if (this.#running < this.capacity) {
      this.#running++;
      state.running++;
      return undefined;
    }
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = {
        start: () => {
          signal?.removeEventListener('abort', abandon);
          resolve();
        },
      };
      // A request its client gave up on stops waiting: its place would otherwise hold a slot for nothing.
      const abandon = () => {
        const at = state.waiting.indexOf(waiter);
        if (at >= 0) state.waiting.splice(at, 1);
        this.#forgetIdle(client, state);
        reject(signal?.reason);
      };
      if (signal?.aborted) return abandon();
      signal?.addEventListener('abort', abandon, { once: true });
      state.waiting.push(waiter);
    });
  }

  #release(client: string): void {
    const state = this.#clients.get(client);
    if (!state) return;
    state.running--;
    this.#running--;
    this.#forgetIdle(client, state);
    const next = this.#nextWaiting();
    if (!next) return;
    // The slot passes straight to the chosen client's oldest waiting work.
    this.#running++;
    next.running++;
    next.waiting.shift()?.start();
  }

  /** The waiting client with the least work running; Map order (first seen first) breaks ties. */
  #nextWaiting(): ClientState | undefined {
    let chosen: ClientState | undefined;
    for (const state of this.#clients.values()) {
      if (state.waiting.length > 0 && (!chosen || state.running < chosen.running)) chosen = state;
    }
    return chosen;
  }

  #forgetIdle(client: string, state: ClientState): void {
    if (state.running === 0 && state.waiting.length === 0) this.#clients.delete(client);
  }
}

/**
 * Gives every operation's resolvers `expensive`, which runs work that reads much of the database
 * (uncached summaries and series, totalCount, nodes) in one of the MAX_EXPENSIVE_OPERATIONS slots,
 * shared fairly between the clients that sent the requests (see clientAddress).
 */
export function useExpensiveWorkSlots(
  config: Pick<Config, 'limits' | 'http'>,
  slots = new ExpensiveWorkSlots(config.limits.expensiveOperations),
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
