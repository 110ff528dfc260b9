import { PothosValidationError } from '@pothos/core';
import { type ExecutionResult, GraphQLError } from 'graphql';
import { maskError as defaultMaskError, type Plugin, type YogaMaskedErrorOpts } from 'graphql-yoga';
import { DatabaseUnavailableError } from '../../database/availability.js';

/**
 * The same error, with another message and extensions: its locations and path are kept, its cause
 * dropped (it is known, so there is nothing for the masking to hide or log).
 */
function recoded(error: GraphQLError, message: string, extensions: Record<string, unknown>): GraphQLError {
  return new GraphQLError(message, {
    nodes: error.nodes,
    source: error.source,
    positions: error.positions,
    path: error.path,
    extensions,
  });
}

/**
 * Yoga's error masking for whatever useErrorCodes left uncoded: "Unexpected error." with no
 * detail, except in development. The request telemetry logs and traces the cause.
 */
export function maskedErrors(env: string): YogaMaskedErrorOpts {
  return {
    errorMessage: 'Unexpected error.',
    maskError: (error, message) => defaultMaskError(error, message, env === 'development'),
  };
}

// graphql-js's words for a variable it cannot coerce: "Variable "$first" got invalid value ...".
const VARIABLE_ERROR = /^Variable "\$([_A-Za-z][_0-9A-Za-z]*)"/;

/** The coded form of an execution error whose cause is known, or undefined. */
function coded(error: GraphQLError): GraphQLError | undefined {
  if (error.extensions?.code !== undefined) return undefined;
  const original = error.originalError;
  // Pothos rejects malformed input (global ids and the like) before our resolvers run.
  if (original instanceof PothosValidationError) {
    return recoded(error, original.message, { code: 'BAD_USER_INPUT' });
  }
  // The database layer logged the cause, once for the whole outage.
  if (original instanceof DatabaseUnavailableError) {
    return recoded(error, 'The database is unavailable; retry shortly.', { code: 'DATABASE_UNAVAILABLE' });
  }
  // Variable errors come before execution, so they have no path.
  const variable = error.path === undefined ? VARIABLE_ERROR.exec(error.message)?.[1] : undefined;
  if (variable !== undefined) {
    return recoded(error, error.message, { ...error.extensions, code: 'BAD_USER_INPUT', argument: variable });
  }
  return undefined;
}

/**
 * Codes for the errors whose cause is known, before Yoga masks the rest:
 * - variables graphql-js cannot coerce (`first: 1.5`, a string for a Boolean, an Int past 2^31)
 *   are the client's mistake: BAD_USER_INPUT with `argument` naming the variable, as Apollo Server
 *   answers (a custom scalar's own refusal already carries its code);
 * - Pothos' refusal of malformed input: BAD_USER_INPUT;
 * - an unreachable database: DATABASE_UNAVAILABLE, an outage rather than a fault.
 * They reach the client as they are, without Yoga logging each one as an error, in query and
 * mutation answers and in subscriptions alike.
 */
export function useErrorCodes(): Plugin {
  return {
    onExecute() {
      return { onExecuteDone: ({ result, setResult }) => recodeResult(result, setResult) };
    },
    // Subscriptions too: a stream refused at its start (the database away) and each event.
    onSubscribe() {
      return {
        onSubscribeResult({ result, setResult }) {
          if (Symbol.asyncIterator in result) {
            return { onNext: ({ result: event, setResult: setEvent }) => recodeResult(event, setEvent) };
          }
          recodeResult(result, setResult);
          return undefined;
        },
      };
    },
  };
}

/**
 * What useErrorCodes and then Yoga's masking (with these options) make of an event's result, each
 * masked cause logged as Yoga logs it, for results that skip their per-result hooks
 * (useSharedEvents' batches). Applied to a result they already made, it changes nothing.
 */
export function finishedEvents(
  masking: YogaMaskedErrorOpts,
  logUnexpected: (error: unknown) => void,
): (result: ExecutionResult) => ExecutionResult {
  const finished = (error: GraphQLError): GraphQLError => {
    const known = coded(error) ?? error;
    // Yoga's maskError makes GraphQLErrors, and returns one it made as it is.
    const masked = masking.maskError(known, masking.errorMessage, masking.isDev) as GraphQLError;
    if (masked !== known) logUnexpected(known);
    return masked;
  };
  return (result) => (result.errors?.length ? { ...result, errors: result.errors.map(finished) } : result);
}

/** Replaces a result whose errors include known causes with one where they are coded. */
function recodeResult(result: unknown, setResult: (result: ExecutionResult) => void): void {
  if (typeof result !== 'object' || result === null || Symbol.asyncIterator in result) return;
  const errors = (result as ExecutionResult).errors;
  if (!errors?.some((error) => coded(error) !== undefined)) return;
  setResult({ ...(result as ExecutionResult), errors: errors.map((error) => coded(error) ?? error) });
}
