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

/** What pg's errors carry besides their message: a server's SQLSTATE, or a socket's address. */
interface PgErrorShape {
  code?: unknown;
  address?: unknown;
  port?: unknown;
  severity?: unknown;
}

/** One line about an error from pg (the ingest script talks to the database through pg only). */
function describePgError(error: Error & PgErrorShape): string | undefined {
  if (typeof error.code !== 'string') return undefined;
  // A DatabaseError from the server carries its severity next to the SQLSTATE.
  if (typeof error.severity === 'string') return `${error.message} (SQLSTATE ${error.code})`;
  if (typeof error.address === 'string' && typeof error.port === 'number')
    return `cannot reach the database server at ${error.address}:${error.port} (${error.code})`;
  return undefined;
}

/** One line about what went wrong, following `cause` through wrappers. */
export function describeError(error: unknown): string {
  const parts: string[] = [];
  let current: unknown = error instanceof DatabaseUnavailableError ? error.cause : error;
  while (current instanceof Error && parts.length < 4) {
    const fromPg = describePgError(current);
    const message = fromPg ?? current.message.replace(/\s+/g, ' ').trim();
    if (message && !parts.includes(message)) parts.push(message);
    if (fromPg) break;
    const code = (current as NodeJS.ErrnoException).code;
    if (code && !message.includes(code)) parts.push(code);
    current = current.cause;
  }
  if (error instanceof AggregateError) {
    for (const inner of error.errors) if (inner instanceof Error) parts.push(inner.message);
  }
  return parts.join(': ') || String(error);
}
