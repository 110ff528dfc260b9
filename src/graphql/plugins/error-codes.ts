import { PothosValidationError } from '@pothos/core';
import {
  type ASTNode,
  BREAK,
  type DocumentNode,
  type ExecutionResult,
  GraphQLError,
  Kind,
  visit,
} from 'graphql';
import { maskError as defaultMaskError, type Plugin, type YogaMaskedErrorOpts } from 'graphql-yoga';
import { InvalidSourceFilterError } from '../../domain/source.js';
import { QUOTED_PREFIX_LENGTH } from '../../domain/time.js';
import { DatabaseUnavailableError } from '../../store/errors.js';
import { ScalarInputError } from '../errors.js';

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

/** The most characters of an error message: what is left of one quoting a large input after cutting its quotes. */
const MAX_MESSAGE_LENGTH = 1000;
// A JSON-quoted string in graphql-js's messages (its `inspect` of a value, a printed literal).
const QUOTED = /"((?:[^"\\]|\\.)*)"/g;

/**
 * `message` with every quoted value past QUOTED_PREFIX_LENGTH cut to its prefix, as our own
 * messages quote input: graphql-js quotes a refused value whole (twice for a variable), so a
 * 1.9 MB variable made a 3.8 MB answer.
 */
function bounded(message: string): string {
  const cut = message.replace(QUOTED, (quoted: string, text: string) =>
    text.length > QUOTED_PREFIX_LENGTH ? `"${text.slice(0, QUOTED_PREFIX_LENGTH)}..."` : quoted,
  );
  return cut.length > MAX_MESSAGE_LENGTH ? `${cut.slice(0, MAX_MESSAGE_LENGTH)}...` : cut;
}

/**
 * The name of the first argument in `document` whose value holds a node `matches` accepts: the
 * argument a refused literal was given to, or that a refused variable is passed to.
 */
function argumentHolding(document: DocumentNode | undefined, matches: (node: ASTNode) => boolean) {
  if (!document) return undefined;
  let found: string | undefined;
  const within: string[] = [];
  visit(document, {
    Argument: {
      enter: (node) => {
        within.push(node.name.value);
      },
      leave: () => {
        within.pop();
      },
    },
    enter(node) {
      if (found !== undefined) return BREAK;
      if (within.length > 0 && matches(node)) found = within[0];
      return undefined;
    },
  });
  return found;
}

/** What an error was made from, beneath graphql-js's own wrapping (a variable's error wraps its value's). */
function causeOf(error: GraphQLError): Error | undefined {
  let cause = error.originalError;
  while (cause instanceof GraphQLError && cause.originalError) cause = cause.originalError;
  return cause;
}

/** The coded form of an error whose cause is known, or of a message too long to send; else undefined. */
function coded(error: GraphQLError, document?: DocumentNode): GraphQLError | undefined {
  const original = causeOf(error);
  const [node] = error.nodes ?? [];
  // Variable errors come before execution, with the variable's definition as their node.
  if (
    error.path === undefined &&
    node?.kind === Kind.VARIABLE_DEFINITION &&
    error.extensions?.code === undefined
  ) {
    const variable = node.variable.name.value;
    const argument =
      argumentHolding(document, (held) => held.kind === Kind.VARIABLE && held.name.value === variable) ??
      variable;
    const message =
      original instanceof ScalarInputError
        ? `Variable "$${variable}" got an invalid value for ${argument}: ${original.message}`
        : bounded(error.message);
    return recoded(error, message, { code: 'BAD_USER_INPUT', argument });
  }
  // A literal a custom scalar refused (validation): graphql-js gives the literal's node.
  if (original instanceof ScalarInputError && node !== undefined) {
    const argument = argumentHolding(document, (held) => held === node);
    const message = argument === undefined ? original.message : `${argument}: ${original.message}`;
    return recoded(error, message, { code: 'BAD_USER_INPUT', ...(argument && { argument }) });
  }
  if (error.extensions?.code === undefined) {
    // Pothos rejects malformed input (global ids and the like) before our resolvers run.
    if (original instanceof PothosValidationError) {
      return recoded(error, bounded(original.message), { code: 'BAD_USER_INPUT' });
    }
    // A filter the database could not evaluate (a regular expression it cannot compile).
    if (original instanceof InvalidSourceFilterError) {
      return recoded(error, bounded(original.message), {
        code: 'BAD_USER_INPUT',
        argument: original.argument,
      });
    }
    // The database layer logged the cause, once for the whole outage.
    if (original instanceof DatabaseUnavailableError) {
      return recoded(error, 'The database is unavailable; retry shortly.', { code: 'DATABASE_UNAVAILABLE' });
    }
  }
  const message = bounded(error.message);
  if (message === error.message) return undefined;
  // Only shortened: an unexpected cause stays for the masking to hide and log.
  return new GraphQLError(message, {
    nodes: error.nodes,
    source: error.source,
    positions: error.positions,
    path: error.path,
    originalError: error.originalError,
    extensions: error.extensions,
  });
}

/**
 * Codes for the errors whose cause is known, before Yoga masks the rest:
 * - variables graphql-js cannot coerce (`first: 1.5`, a string for a Boolean, an Int past 2^31, a
 *   DateTime without an offset) are the client's mistake: BAD_USER_INPUT with `argument` naming
 *   the argument the variable is first passed to (`if` for a directive's);
 * - a literal a custom scalar refuses (`start: "2026-01-01T00:00:00"`): BAD_USER_INPUT naming
 *   the argument;
 * - Pothos' refusal of malformed input: BAD_USER_INPUT;
 * - an unreachable database: DATABASE_UNAVAILABLE, an outage rather than a fault.
 * Every message quotes at most a short prefix of the client's input, in parse and validation
 * errors too. They reach the client as they are, without Yoga logging each one as an error, in
 * query and mutation answers and in subscriptions alike.
 */
export function useErrorCodes(): Plugin {
  return {
    onParse() {
      return ({ result, replaceParseResult }) => {
        if (result instanceof GraphQLError) {
          const shortened = coded(result);
          if (shortened) replaceParseResult(shortened);
        }
      };
    },
    onValidate({ params }) {
      return ({ result, setResult }) => {
        const errors = result as GraphQLError[];
        const recodedErrors = errors.map((error) => coded(error, params.documentAST) ?? error);
        if (recodedErrors.some((error, at) => error !== errors[at])) setResult(recodedErrors);
      };
    },
    onExecute({ args }) {
      return {
        onExecuteDone: ({ result, setResult }) => recodeResult(result, setResult, args.document),
      };
    },
    // Subscriptions too: a stream refused at its start (the database away) and each event.
    onSubscribe({ args }) {
      return {
        onSubscribeResult({ result, setResult }) {
          if (Symbol.asyncIterator in result) {
            return { onNext: ({ result: event, setResult: setEvent }) => recodeResult(event, setEvent) };
          }
          recodeResult(result, setResult, args.document);
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
function recodeResult(
  result: unknown,
  setResult: (result: ExecutionResult) => void,
  document?: DocumentNode,
): void {
  if (typeof result !== 'object' || result === null || Symbol.asyncIterator in result) return;
  const errors = (result as ExecutionResult).errors;
  if (!errors?.length) return;
  const recodedErrors = errors.map((error) => coded(error, document) ?? error);
  if (recodedErrors.some((error, at) => error !== errors[at])) {
    setResult({ ...(result as ExecutionResult), errors: recodedErrors });
  }
}
