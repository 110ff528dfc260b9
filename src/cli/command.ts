import type { Writable } from 'node:stream';
import { type ParseArgsConfig, parseArgs } from 'node:util';
import { type Config, ConfigError, parseConfig } from '../config.js';
import { DatabaseUnavailableError } from '../store/errors.js';

// What every command (ingest, partitions, rollups) shares: its streams, its exit codes, the mistakes
// a user can fix, and an error said in one line.

/** What a command reads and writes: the process's own streams, or a test's. */
export interface CommandIo {
  env: NodeJS.ProcessEnv;
  stdout: Writable;
  /** Errors, progress and the summary; a progress bar only when it is a terminal. */
  stderr: Writable & { isTTY?: boolean };
}

/** Every command's exit codes besides its own 1: done; a usage, configuration or database error. */
export const COMMAND_EXIT = { ok: 0, failed: 2 } as const;

/** A mistake the user can fix (exit code 2): the command line, an unreadable input, the configuration, the database. */
export class UsageError extends Error {
  constructor(
    message: string,
    /** Whether to point at --help: for mistakes in the command line itself. */
    readonly commandLine = false,
  ) {
    super(message);
  }
}

/** What a command prints for a usage error: its name, the message and, for the command line, where help is. */
export function usageErrorText(command: string, error: UsageError): string {
  return `${command}: ${error.message}\n${error.commandLine ? 'Run with --help for usage.\n' : ''}`;
}

/** `parseArgs`, its refusals (an unknown option, a missing value) being mistakes in the command line. */
export function parseCommandLine<T extends ParseArgsConfig>(config: T): ReturnType<typeof parseArgs<T>> {
  try {
    return parseArgs(config);
  } catch (error) {
    throw new UsageError((error as Error).message, true);
  }
}

/** The configuration from `env`, whose problems are the user's to fix. */
export function parseCommandConfig(env: NodeJS.ProcessEnv): Config {
  try {
    return parseConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) throw new UsageError(error.message);
    throw error;
  }
}

/** For `openCommandDatabase(...).catch(cannotOpenDatabase)`: a database that will not open is the user's to fix. */
export function cannotOpenDatabase(error: unknown): never {
  throw new UsageError(`cannot open the database: ${describeError(error)}`);
}

/** Which database a message is about: the embedded one, or the server at its URL without the password. */
export function describeDatabase(database: { embedded: boolean; url: string }): string {
  return database.embedded ? 'the embedded database' : `PostgreSQL at ${redact(database.url)}`;
}

/** The URL without its password, fit for an error message. */
function redact(url: string): string {
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

/** One line about an error from pg (the commands talk to the database through pg only). */
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
