import type { Logger } from '../observability/logger.js';

/**
 * The database could not be reached, or dropped the connection: an expected condition while
 * PostgreSQL restarts or fails over, answered as `DATABASE_UNAVAILABLE` (GraphQL) or 503 (REST)
 * rather than as an internal error. The cause stays here, for the log, never for the client.
 */
export class DatabaseUnavailableError extends Error {
  constructor(cause: unknown) {
    super('The database is unavailable', { cause });
    this.name = 'DatabaseUnavailableError';
  }
}

/**
 * `work`, or the error `timedOut()` makes when `work` has not settled within `ms`: the bound on
 * waiting for a database that may be away (readiness, the live feed's start). `work` itself is
 * left to settle on its own.
 */
export async function within<T>(work: Promise<T>, ms: number, timedOut: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(timedOut()), ms);
  });
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Seconds a client should wait before retrying while the database is unavailable. */
export const RETRY_AFTER_SECONDS = 5;

// Node's socket errors for a server that is down, unreachable or went away.
const SOCKET_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EPIPE',
]);
// SQLSTATEs of a server that is starting, shutting down or full: class 08 (connection exception),
// 57P01-57P03 (admin/crash shutdown, cannot connect now) and 53300 (too many connections).
const UNAVAILABLE_SQLSTATE = /^(08...|57P0[123]|53300)$/;
// What @prisma/adapter-pg reports for the same conditions (`meta.driverAdapterError.cause.kind`).
const UNAVAILABLE_ADAPTER_KINDS = new Set([
  'DatabaseNotReachable',
  'ConnectionClosed',
  'SocketTimeout',
  'TooManyConnections',
]);
// Prisma's own codes: cannot reach, timed out, server closed the connection, pool timeout.
const UNAVAILABLE_PRISMA_CODES = new Set(['P1001', 'P1002', 'P1017', 'P2024']);
// pg-pool's connection timeout and a connection lost mid-query are plain Errors without a code:
// their messages are all there is to tell them by.
const PG_POOL_MESSAGES = /^(timeout exceeded when trying to connect|Connection terminated)/;

interface ErrorShape {
  code?: unknown;
  message?: unknown;
  cause?: unknown;
  meta?: { driverAdapterError?: { cause?: { kind?: unknown; originalCode?: unknown } } };
}

/** Whether `error` (or an error it wraps) says the database is unreachable rather than that a statement failed. */
export function isDatabaseUnavailable(error: unknown): boolean {
  let current: unknown = error;
  for (let depth = 0; depth < 5 && typeof current === 'object' && current !== null; depth++) {
    if (current instanceof DatabaseUnavailableError) return true;
    const { code, message, meta } = current as ErrorShape;
    if (typeof code === 'string') {
      if (SOCKET_CODES.has(code) || UNAVAILABLE_SQLSTATE.test(code) || UNAVAILABLE_PRISMA_CODES.has(code)) {
        return true;
      }
    }
    const adapterCause = meta?.driverAdapterError?.cause;
    if (adapterCause) {
      if (typeof adapterCause.kind === 'string' && UNAVAILABLE_ADAPTER_KINDS.has(adapterCause.kind))
        return true;
      if (
        typeof adapterCause.originalCode === 'string' &&
        UNAVAILABLE_SQLSTATE.test(adapterCause.originalCode)
      ) {
        return true;
      }
    }
    if (typeof message === 'string' && PG_POOL_MESSAGES.test(message)) return true;
    current = (current as ErrorShape).cause;
  }
  return false;
}

/**
 * Tells unavailability from other failures, and logs an outage once when it starts and once when
 * it ends, however many requests fail in between.
 */
export class DatabaseAvailability {
  #down = false;

  constructor(private readonly logger: Logger) {}

  /** The error to throw for `error`: a DatabaseUnavailableError when the database is unreachable. */
  classify(error: unknown): unknown {
    if (error instanceof DatabaseUnavailableError) return error;
    if (!isDatabaseUnavailable(error)) return error;
    if (!this.#down) {
      this.#down = true;
      this.logger.warn({ err: error }, 'Database unavailable');
    }
    return new DatabaseUnavailableError(error);
  }

  /** A new connection was made: the database is back, if it was away. */
  connected(): void {
    if (!this.#down) return;
    this.#down = false;
    this.logger.info('Database available again');
  }
}
