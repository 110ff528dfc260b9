import { DatabaseUnavailableError } from '../../database/availability.js';

/** The URL without its password, fit for an error message. */
export function redact(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '(unparseable URL)';
  }
}

/** What Prisma's errors carry besides their (multi-line, source-quoting) message. */
interface PrismaErrorShape {
  code?: unknown;
  meta?: {
    driverAdapterError?: {
      cause?: {
        kind?: unknown;
        originalCode?: unknown;
        originalMessage?: unknown;
        host?: unknown;
        port?: unknown;
      };
    };
  };
}

/**
 * One line about a database error, from Prisma's error code and `meta` (the driver's SQLSTATE and
 * message, or the adapter's kind of failure), never from Prisma's message text, which quotes the
 * calling source code.
 */
function describePrismaError(error: PrismaErrorShape): string | undefined {
  const cause = error.meta?.driverAdapterError?.cause;
  if (!cause) return undefined;
  if (typeof cause.originalMessage === 'string') {
    return typeof cause.originalCode === 'string'
      ? `${cause.originalMessage} (SQLSTATE ${cause.originalCode})`
      : cause.originalMessage;
  }
  if (cause.kind === 'DatabaseNotReachable')
    return `cannot reach the database server at ${cause.host}:${cause.port}`;
  return typeof cause.kind === 'string'
    ? `${cause.kind}${typeof error.code === 'string' ? ` (${error.code})` : ''}`
    : undefined;
}

/** One line about what went wrong, following `cause` through wrappers. */
export function describeError(error: unknown): string {
  const parts: string[] = [];
  let current: unknown = error instanceof DatabaseUnavailableError ? error.cause : error;
  while (current instanceof Error && parts.length < 4) {
    const fromPrisma = describePrismaError(current as PrismaErrorShape);
    const message = fromPrisma ?? current.message.replace(/\s+/g, ' ').trim();
    if (message && !parts.includes(message)) parts.push(message);
    if (fromPrisma) break;
    const code = (current as NodeJS.ErrnoException).code;
    if (code && !message.includes(code)) parts.push(code);
    current = current.cause;
  }
  if (error instanceof AggregateError) {
    for (const inner of error.errors) if (inner instanceof Error) parts.push(inner.message);
  }
  return parts.join(': ') || String(error);
}
