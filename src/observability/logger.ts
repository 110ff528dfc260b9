import { context, trace } from '@opentelemetry/api';
import { pino } from 'pino';
import type { Config } from '../config.js';

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
 * JSON lines for machines (production, pipes, files, log collectors); pino-pretty, through pino's
 * own transport, for a person at a terminal in development.
 */
export function createLogger(config: Pick<Config, 'logLevel' | 'env'>, options: LoggerOptions): Logger {
  const fd = options.fd ?? 1;
  const base = { service: options.service };
  // A line written under an active span (the ingest command, whose spans nest through an async
  // context) names its trace; the server passes its trace ids explicitly instead (request-telemetry.ts).
  const mixin = () => {
    const span = trace.getSpan(context.active())?.spanContext();
    return span ? { trace_id: span.traceId, span_id: span.spanId } : {};
  };
  if (options.isTTY && config.env !== 'production') {
    return pino({
      level: config.logLevel,
      base,
      mixin,
      transport: { target: 'pino-pretty', options: { destination: fd, ignore: 'pid,hostname,service' } },
    });
  }
  return pino({ level: config.logLevel, base, mixin }, pino.destination(fd));
}
