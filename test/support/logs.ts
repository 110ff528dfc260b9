import { Writable } from 'node:stream';
import { type Logger, pino } from 'pino';

/** A logger whose JSON lines are kept, parsed, in `lines`. */
export function capturingLogger(level = 'info'): { logger: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const logger = pino(
    { level },
    new Writable({
      write(chunk, _encoding, done) {
        for (const line of String(chunk).trim().split('\n')) lines.push(JSON.parse(line));
        done();
      },
    }),
  );
  return { logger, lines };
}
