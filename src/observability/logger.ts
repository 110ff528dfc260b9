import { context, trace } from '@opentelemetry/api';
import { pino } from 'pino';
import type { Config } from '../config.js';
import { boundedText, boundedValue } from './bounds.js';

export type Logger = pino.Logger;

export interface LoggerOptions {
  /** The `service` field of every line. */
  service: string;
  /** File descriptor to write to: 1 for the server; 2 for commands whose stdout carries results. */
  fd?: 1 | 2;
  /** Whether that descriptor is a terminal; only then, and not in production, are lines pretty. */
  isTTY?: boolean;
}

/**
 * Every string, list and nesting of a line bounded (bounds.ts), error messages included: a line
 * may quote a client's input.
 */
export const boundedLines = {
  formatters: { log: (object: Record<string, unknown>) => boundedValue(object) as Record<string, unknown> },
  serializers: {
    err: (error: Error) => boundedValue(pino.stdSerializers.err(error)),
    // The message of a line logged from an error is the error's.
    msg: (message: string) => boundedText(message),
  },
} satisfies pino.LoggerOptions;

/**
 * JSON lines for machines (production, pipes, files, log collectors); pino-pretty, through pino's
 * own transport, for a person at a terminal in development.
 */
export function createLogger(config: Pick<Config, 'logLevel' | 'env'>, options: LoggerOptions): Logger {
  const fd = options.fd ?? 1;
  const base = { service: options.service };
  // A line written under an active span (the ingest command, whose spans nest through an async
  // context) names its trace; the server passes its trace ids explicitly instead (plugins/).
  const mixin = () => {
    const span = trace.getSpan(context.active())?.spanContext();
    return span ? { trace_id: span.traceId, span_id: span.spanId } : {};
  };
  if (options.isTTY && config.env !== 'production') {
    return pino({
      level: config.logLevel,
      base,
      mixin,
      ...boundedLines,
      transport: { target: 'pino-pretty', options: { destination: fd, ignore: 'pid,hostname,service' } },
    });
  }
  return pino({ level: config.logLevel, base, mixin, ...boundedLines }, pino.destination(fd));
}
