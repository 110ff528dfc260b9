import type { AddressInfo } from 'node:net';
import { parseConfig } from '../../src/config.js';
import type { App } from '../../src/http/app.js';
import { answeringLiveness } from '../../src/http/health.js';
import { listen } from '../../src/http/server.js';
import { createLogger } from '../../src/observability/logger.js';

export interface ServedApp {
  url: string;
  close(): Promise<void>;
}

const silent = createLogger(parseConfig({ LOG_LEVEL: 'silent' }), { service: 'test' });

/** `app` on a loopback port, as main() serves it (liveness answered first). close() disposes of the app too. */
export async function serve(app: App): Promise<ServedApp> {
  const http = await listen(answeringLiveness(app), {
    host: '127.0.0.1',
    port: 0,
    logger: silent,
    settings: 'PORT',
  });
  const { port } = http.server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    async close() {
      await app.dispose();
      await http.close(2000);
    },
  };
}

export interface GraphQLEvent<Data = Record<string, unknown>> {
  data?: Data | null;
  errors?: { message: string; extensions?: { code?: string } }[];
}

/**
 * One subscription over a real socket in Yoga's distinct-connections SSE mode: the events are
 * collected as they arrive; `take(n)` waits for the first n.
 */
export class SseSubscription<Data = Record<string, unknown>> {
  readonly events: GraphQLEvent<Data>[] = [];
  /** Comment lines (keep-alive pings) seen. */
  pings = 0;
  status = 0;
  contentType = '';
  completed = false;
  readonly #abort = new AbortController();
  readonly #waiters = new Set<() => void>();
  readonly opened: Promise<void>;
  readonly done: Promise<void>;

  constructor(baseUrl: string, query: string, variables: Record<string, unknown> = {}) {
    let opened: () => void = () => {};
    this.opened = new Promise((resolve) => {
      opened = resolve;
    });
    this.done = this.#read(baseUrl, query, variables, opened).catch((error: unknown) => {
      if (!this.#abort.signal.aborted) throw error;
    });
  }

  async #read(baseUrl: string, query: string, variables: Record<string, unknown>, opened: () => void) {
    const response = await fetch(`${baseUrl}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
      body: JSON.stringify({ query, variables }),
      signal: this.#abort.signal,
    });
    this.status = response.status;
    this.contentType = response.headers.get('content-type') ?? '';
    opened();
    if (!response.body) return;
    const decoder = new TextDecoder();
    let buffer = '';
    for await (const chunk of response.body) {
      buffer += decoder.decode(chunk as Uint8Array, { stream: true });
      let end = buffer.indexOf('\n\n');
      while (end !== -1) {
        this.#message(buffer.slice(0, end));
        buffer = buffer.slice(end + 2);
        end = buffer.indexOf('\n\n');
      }
    }
    this.completed = true;
    this.#wakeAll();
  }

  #message(block: string): void {
    let event = 'message';
    const data: string[] = [];
    for (const line of block.split('\n')) {
      if (line.startsWith(':')) this.pings++;
      else if (line.startsWith('event:')) event = line.slice(6).trim();
      else if (line.startsWith('data:')) data.push(line.slice(5).trimStart());
    }
    if (event === 'complete') this.completed = true;
    else if (data.length > 0) this.events.push(JSON.parse(data.join('\n')) as GraphQLEvent<Data>);
    this.#wakeAll();
  }

  #wakeAll(): void {
    for (const wake of this.#waiters) wake();
  }

  /** Waits until `condition` holds (re-checked on every event), failing after `timeoutMs`. */
  async until(condition: () => boolean, timeoutMs = 10_000, what = 'the expected events'): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!condition()) {
      if (this.completed) throw new Error(`the stream ended before ${what} (${this.events.length} events)`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what} (${this.events.length} events)`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, Math.min(left, 200));
        function done() {
          clearTimeout(timer);
          resolve();
        }
        this.#waiters.add(done);
      });
      this.#waiters.clear();
    }
  }

  async take(count: number, timeoutMs?: number): Promise<GraphQLEvent<Data>[]> {
    await this.until(() => this.events.length >= count, timeoutMs, `${count} events`);
    return this.events.slice(0, count);
  }

  close(): void {
    this.#abort.abort();
  }
}
