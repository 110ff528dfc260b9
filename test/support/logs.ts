import { Writable } from 'node:stream';
import { type Logger, pino } from 'pino';
import { boundedLines } from '../../src/observability/logger.js';

/** A logger whose JSON lines are kept, parsed, in `lines`; bounded as the service's are. */
export function capturingLogger(level = 'info'): { logger: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const logger = pino(
    { level, ...boundedLines },
    new Writable({
      write(chunk, _encoding, done) {
        for (const line of String(chunk).trim().split('\n')) lines.push(JSON.parse(line));
        done();
      },
    }),
  );
  return { logger, lines };
}
