/**
 * A GraphQL subscription over plain SSE (POST /graphql with `Accept: text/event-stream`) opened
 * from the bench process with node:http. It hands its events on as text, whole events only, to a
 * scanner that finds what it counts in place: at up to a million events a second this process
 * shares the machine with the servers, so nothing is decoded as UTF-8 or parsed as JSON.
 */
import { request } from 'node:http';

const EVENT_END = Buffer.from('\n\n');

export class SseSubscription {
  /** Resolves once the server answered 200 and the stream is open. */
  readonly opened: Promise<void>;
  /** The start of an event that continues in the next chunk. */
  #rest: Buffer | undefined;
  #close: () => void = () => {};

  /**
   * `onEvents` gets the complete events of each chunk (the latin-1 copy of their bytes) and when
   * they arrived.
   */
  constructor(port: number, body: string, onEvents: (text: string, now: number) => void) {
    this.opened = new Promise((resolve, reject) => {
      const req = request(
        {
          host: '127.0.0.1',
          port,
          path: '/graphql',
          method: 'POST',
          agent: false,
          headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
        },
        (response) => {
          if (response.statusCode !== 200) reject(new Error(`subscription answered ${response.statusCode}`));
          response.on('data', (chunk: Buffer) => {
            const bytes = this.#rest ? Buffer.concat([this.#rest, chunk]) : chunk;
            const end = bytes.lastIndexOf(EVENT_END);
            if (end === -1) {
              this.#rest = bytes;
              return;
            }
            this.#rest = end + 2 < bytes.length ? bytes.subarray(end + 2) : undefined;
            // Latin-1 copies the bytes as they are, and a string's indexOf is several times
            // cheaper than a Buffer's per call (Buffer's was a third of this process's CPU with
            // an event per sample).
            onEvents(bytes.toString('latin1', 0, end), performance.now());
          });
          resolve();
        },
      );
      req.on('error', reject);
      req.end(body);
      this.#close = () => req.destroy();
    });
  }

  close(): void {
    this.#close();
  }
}

const DIGITS: [offset: number, scale: number][] = [
  [11, 36_000_000],
  [12, 3_600_000],
  [14, 600_000],
  [15, 60_000],
  [17, 10_000],
  [18, 1000],
  [20, 100],
  [21, 10],
  [22, 1],
];

/** Milliseconds since midnight of the ISO timestamp `YYYY-MM-DDTHH:MM:SS.mmmZ` at `at`, read in place. */
export function msOfDay(text: string, at: number): number {
  let ms = 0;
  // HH:MM:SS.mmm, the digits after the date and the "T", with their place values.
  for (const [offset, scale] of DIGITS) ms += (text.charCodeAt(at + offset) - 48) * scale;
  return ms;
}
