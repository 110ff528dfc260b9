import { GraphQLError } from 'graphql';
import { endsBeforeStart, type TimeRange } from '../domain/time.js';

/** Codes follow Apollo's conventions, which GraphQL clients already understand. */
export type ErrorCode =
  | 'BAD_USER_INPUT'
  | 'NOT_FOUND'
  | 'UNAUTHENTICATED'
  | 'FORBIDDEN'
  | 'INGEST_DISABLED'
  | 'DATABASE_UNAVAILABLE';

export function userError(code: ErrorCode, message: string, extensions: Record<string, unknown> = {}) {
  return new GraphQLError(message, { extensions: { code, ...extensions } });
}

/**
 * A custom scalar's refusal of a value. graphql-js knows where the value was (a literal's node,
 * a variable's definition) and wraps it; useErrorCodes (plugins/error-codes.ts) names the argument
 * from there, which the scalar itself cannot know.
 */
export class ScalarInputError extends Error {
  override name = 'ScalarInputError';
}

/** A problem with one argument; `argument` names it so clients can point at the right input. */
export function badUserInput(argument: string, message: string) {
  return userError('BAD_USER_INPUT', `${argument}: ${message}`, { argument });
}

/** Refuses a `start`/`end` window that ends before it starts; either bound may be absent. */
export function assertStartNotAfterEnd(range: TimeRange): void {
  if (endsBeforeStart(range)) throw badUserInput('start', 'must not be after end');
}
