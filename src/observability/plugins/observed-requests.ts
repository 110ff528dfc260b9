import { type DocumentNode, type ExecutionResult, type GraphQLError, getOperationAST } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import { LabelValues } from '../bounds.js';
import type { OperationScope } from '../operation-scope.js';

/** The methods `http.request.method` names; any other is `_OTHER`, as the semantic conventions say. */
const KNOWN_METHODS = new Set([
  'CONNECT',
  'DELETE',
  'GET',
  'HEAD',
  'OPTIONS',
  'PATCH',
  'POST',
  'PUT',
  'TRACE',
]);

/**
 * What is known of a request being served, the facts every telemetry plugin reads: written by
 * useObservedRequests (and by http-spans.ts, which alone knows the server span's ids).
 */
export interface ObservedRequest {
  /** performance.now() at the request's first hook. */
  readonly started: number;
  readonly path: string;
  /** A route of this service's, or none: labels and span names stay bounded. */
  readonly route: string | undefined;
  /** The request's method as a label: one of the standard methods, or `_OTHER`. */
  readonly method: string;
  /** Handed to the store: the statements the request ran, and the span its work is a child of. */
  readonly scope: OperationScope;
  /** The operation, once execution or a subscription starts. */
  operation:
    | {
        type: string;
        /** As the document names it, unbounded: only a span attribute keeps it (cut to its bound). */
        name: string | undefined;
        /** As a label value: cut short, "(other)" past the label's distinct values, or "(anonymous)". */
        label: string;
      }
    | undefined;
  /** The `extensions.code` of every error of the answer. */
  readonly errorCodes: Set<string>;
  /** The HTTP server span's ids, when tracing; `recorded` when its trace is kept (sampled). */
  serverSpan: { traceId: string; spanId: string; recorded: boolean } | undefined;
  /** Milliseconds from the first hook to the response, once the response is ready. */
  durationMs: number | undefined;
}

/** An observed request whose response is ready. */
export type FinishedRequest = ObservedRequest & { readonly durationMs: number };

export interface ObservedRequests {
  /**
   * The facts of a request being served, until its response is ready; none for a path never
   * observed (probes, scrapes).
   */
  of(request: Request): ObservedRequest | undefined;
  /** The facts of the request a GraphQL hook's context was made for, until its response is ready. */
  ofContext(context: unknown): ObservedRequest | undefined;
  /** The facts of a request whose response is ready, with its duration: for onResponse hooks. */
  finished(request: Request): FinishedRequest | undefined;
}

/** A GraphQL error's code as counted and logged: its `extensions.code`, or INTERNAL_SERVER_ERROR. */
export function errorCode(error: GraphQLError): string {
  return String(error.extensions?.code ?? 'INTERNAL_SERVER_ERROR');
}

/**
 * The cause of an error without a code, which Yoga masks as "Unexpected error.": it goes to the
 * trace and the log, with the trace's ids, never to the client. None for a coded error.
 */
export function unexpectedCause(error: GraphQLError): Error | undefined {
  return error.extensions?.code === undefined ? (error.originalError ?? error) : undefined;
}

/**
 * The operation's name for a log line: its label once it started, "(invalid)" for a request refused
 * before (parsing, validation, limits), none for a request that is no operation.
 */
export function operationLabel(observed: ObservedRequest): string | undefined {
  return observed.operation?.label ?? (observed.errorCodes.size > 0 ? '(invalid)' : undefined);
}

/** The trace a log line names: the server span's when its trace is kept; sampled out, none to point at. */
export function sampledTraceId(observed: ObservedRequest): string | undefined {
  return observed.serverSpan?.recorded ? observed.serverSpan.traceId : undefined;
}

/** The path of a request URL, without building a URL object on the hot path. */
function pathOf(url: string): string {
  const start = url.indexOf('/', url.indexOf('//') + 2);
  const end = url.indexOf('?', start);
  return url.slice(start, end === -1 ? undefined : end);
}

export interface ObservedRequestsOptions {
  /** The routes this service answers: anything else is labelled by method alone. */
  routes: readonly string[];
  /** Paths answered without a span, a log line or a measurement (probes, scrapes). */
  untraced: readonly string[];
  /** Distinct operation names kept as labels before the rest are "(other)". */
  maxOperationNames: number;
}

/**
 * The facts of every observed request, for the telemetry plugins after it: its start, route and
 * scope from its first hook, its operation's type and name as execution or a subscription starts,
 * every error code of its answer, and its duration as the response is ready; from then on only
 * onResponse hooks see them (`finished`). It must come before the plugins that read them: its
 * onRequest makes the facts, its onResponse their duration.
 */
export function useObservedRequests(options: ObservedRequestsOptions): {
  plugin: Plugin;
  requests: ObservedRequests;
} {
  const observedRequests = new WeakMap<Request, ObservedRequest>();
  const operationNames = new LabelValues(options.maxOperationNames);

  const requests: ObservedRequests = {
    of(request) {
      const observed = observedRequests.get(request);
      return observed?.durationMs === undefined ? observed : undefined;
    },
    ofContext(context) {
      const request = (context as { request?: Request } | undefined)?.request;
      return request && requests.of(request);
    },
    finished(request) {
      const observed = observedRequests.get(request);
      return observed?.durationMs === undefined ? undefined : (observed as FinishedRequest);
    },
  };

  /** Records the type and name of a request's operation as execution or a subscription starts. */
  function operationStarted(args: {
    document: DocumentNode;
    operationName?: string | null | undefined;
    contextValue: unknown;
  }): ObservedRequest | undefined {
    const observed = requests.ofContext(args.contextValue);
    if (!observed) return undefined;
    const operation = getOperationAST(args.document, args.operationName);
    const name = operation?.name?.value ?? args.operationName ?? undefined;
    observed.operation = {
      type: operation?.operation ?? 'query',
      name,
      label: name ? operationNames.bounded(name) : '(anonymous)',
    };
    return observed;
  }

  const plugin: Plugin = {
    onRequest({ request }) {
      const path = pathOf(request.url);
      if (options.untraced.includes(path)) return;
      observedRequests.set(request, {
        started: performance.now(),
        path,
        route: options.routes.includes(path) ? path : undefined,
        method: KNOWN_METHODS.has(request.method) ? request.method : '_OTHER',
        scope: { statements: [] },
        operation: undefined,
        errorCodes: new Set(),
        serverSpan: undefined,
        durationMs: undefined,
      });
    },
    onExecute({ args }) {
      operationStarted(args);
    },
    onSubscribe({ args }) {
      const observed = operationStarted(args);
      if (!observed) return;
      return {
        onSubscribeResult({ result }) {
          // A subscription refused before its stream opens (a bad argument): over the
          // single-connection protocol its errors never pass onResultProcess, so they are counted here.
          if (Symbol.asyncIterator in result) return;
          for (const error of result.errors ?? []) observed.errorCodes.add(errorCode(error));
        },
      };
    },
    onResultProcess({ request, result }) {
      // Every error of the answer, from parsing, validation, limits or execution.
      const observed = requests.of(request);
      if (!observed || Array.isArray(result) || Symbol.asyncIterator in (result as object)) return;
      for (const error of (result as ExecutionResult).errors ?? []) {
        observed.errorCodes.add(errorCode(error));
      }
    },
    onResponse({ request }) {
      const observed = requests.of(request);
      if (observed) observed.durationMs = performance.now() - observed.started;
    },
  };
  return { plugin, requests };
}
