import {
  type Attributes,
  type Context,
  type Meter,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  type Tracer,
  trace,
} from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { type DocumentNode, type ExecutionResult, type GraphQLError, getOperationAST } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import { boundedText, LabelValues, MAX_LIST_ITEMS, shortLabel } from './bounds.js';
import type { Logger } from './logger.js';
import type { OperationScope, StatementRecord } from './operation-scope.js';

/** Seconds: the semantic conventions' advice for http.server.request.duration. */
const HTTP_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10];

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

const propagator = new W3CTraceContextPropagator();
const headerGetter = {
  keys: (headers: Headers) => [...headers.keys()],
  get: (headers: Headers, key: string) => headers.get(key) ?? undefined,
};

export interface RequestTelemetryOptions {
  /** A tracer when tracing is on; without one no span is made. */
  tracer: Tracer | undefined;
  meter: Meter;
  logger: Logger;
  /** The routes this service answers: anything else is labelled by method alone. */
  routes: readonly string[];
  /** Paths answered without a span, a log line or a measurement (probes, scrapes). */
  untraced: readonly string[];
  accessLog: { enabled: boolean; sampleRate: number };
  slowOperationMs: number;
  /** Distinct values a client-chosen label (operation name, error code) takes before the rest are "(other)". */
  maxOperationNames: number;
  /** EXPLAIN (FORMAT JSON) of a statement, for the slow-operation log; undefined for one that is not a read. */
  explain(statement: StatementRecord): Promise<unknown>;
  /** At most one plan is taken per this many milliseconds. */
  explainIntervalMs: number;
}

interface RequestState {
  started: number;
  path: string;
  route: string | undefined;
  span: Span | undefined;
  operationSpan: Span | undefined;
  /** The trace context of the operation span, the parent of parse, validate and execute. */
  operationContext: Context | undefined;
  executeSpan: Span | undefined;
  operationType: string | undefined;
  /** The operation's name as a label value: cut short, and "(other)" past the label's distinct values. */
  operationName: string | undefined;
  errorCodes: Set<string>;
  scope: OperationScope;
}

/** A request's method as a label: one of the standard methods, or `_OTHER`. */
function methodLabel(method: string): string {
  return KNOWN_METHODS.has(method) ? method : '_OTHER';
}

/**
 * The statements of a slow operation for its log line: one entry per distinct text in the order
 * first run, with how often it ran and its total time; only the MAX_LIST_ITEMS slowest such
 * entries, each text bounded. An operation that ran 10,000 statements (a list of ids read one by
 * one) says so in a few hundred bytes.
 */
function loggedStatements(statements: readonly StatementRecord[]) {
  const byText = new Map<string, { text: string; count: number; ms: number }>();
  for (const { text, ms } of statements) {
    const entry = byText.get(text);
    if (entry) {
      entry.count++;
      entry.ms += ms;
    } else byText.set(text, { text, count: 1, ms });
  }
  const distinct = [...byText.values()];
  const kept = new Set(distinct.toSorted((a, b) => b.ms - a.ms).slice(0, MAX_LIST_ITEMS));
  return {
    statement_count: statements.length,
    statements: distinct
      .filter((entry) => kept.has(entry))
      .map(({ text, count, ms }) => ({ text: boundedText(text), count, ms: Math.round(ms * 10) / 10 })),
    ...(distinct.length > kept.size ? { statements_omitted: distinct.length - kept.size } : {}),
  };
}

/** The path of a request URL, without building a URL object on the hot path. */
function pathOf(url: string): string {
  const start = url.indexOf('/', url.indexOf('//') + 2);
  const end = url.indexOf('?', start);
  return url.slice(start, end === -1 ? undefined : end);
}

/**
 * Observability of every request, through Yoga's own instrumentation hooks (no patching): the HTTP
 * server span (joining the caller's W3C trace context), the GraphQL operation span with its
 * parse, validate and execute children following the GraphQL semantic conventions, the request
 * duration histogram, GraphQL operation and error counters, one access log line, and the
 * slow-operation log with the SQL each slow operation ran and the plan of its slowest statement.
 */
export function useRequestTelemetry(options: RequestTelemetryOptions): {
  plugin: Plugin;
  /** The scope of a request being served, to hand to the store; none for untraced paths. */
  scopeOf(request: Request): OperationScope | undefined;
  /** Whether an error was logged here already, with its trace (Yoga's logger skips those). */
  alreadyLogged(error: unknown): boolean;
} {
  const { tracer, meter, logger } = options;
  const states = new WeakMap<Request, RequestState>();
  const operationNames = new LabelValues(options.maxOperationNames);
  const errorCodes = new LabelValues(options.maxOperationNames);
  // Unexpected errors this plugin logged with their trace ids; Yoga logs no second line for them.
  const logged = new WeakSet<object>();
  let lastExplain = Number.NEGATIVE_INFINITY;

  const duration = meter.createHistogram('http.server.request.duration', {
    unit: 's',
    description: 'Duration of HTTP server requests.',
    advice: { explicitBucketBoundaries: HTTP_BUCKETS },
  });
  const operations = meter.createCounter('graphql.server.operations', {
    unit: '{operation}',
    description: 'GraphQL operations by type, name and outcome.',
  });
  const errors = meter.createCounter('graphql.server.errors', {
    unit: '{error}',
    description: 'GraphQL errors by extensions.code.',
  });

  const boundedName = (name: string | undefined) => (name ? operationNames.bounded(name) : '(anonymous)');

  /** The state of a traced request whose span was sampled, the parent of its GraphQL spans. */
  function sampled(
    graphqlContext: unknown,
  ): (RequestState & { scope: Required<OperationScope> }) | undefined {
    const request = (graphqlContext as { request?: Request } | undefined)?.request;
    const state = request && states.get(request);
    return state?.scope.trace ? (state as RequestState & { scope: Required<OperationScope> }) : undefined;
  }

  /**
   * The span of a request's GraphQL operation, begun by its first phase: the parent of parse,
   * validate and execute. It ends with the response.
   */
  function operationContext(state: RequestState & { scope: Required<OperationScope> }): Context {
    if (!state.operationContext) {
      const span = (tracer as Tracer).startSpan('graphql.operation', {}, state.scope.trace.context);
      state.operationSpan = span;
      state.operationContext = trace.setSpan(state.scope.trace.context, span);
    }
    return state.operationContext;
  }

  /** A span for one GraphQL phase of a sampled request, ended by the hook's done callback. */
  function phase(name: string, graphqlContext: unknown): (() => void) | undefined {
    const state = sampled(graphqlContext);
    if (!state) return undefined;
    const span = (tracer as Tracer).startSpan(name, {}, operationContext(state));
    return () => span.end();
  }

  function slowOperation(state: RequestState, request: Request, ms: number, traceId: string | undefined) {
    const statements = state.scope.statements;
    const slowest = statements.reduce<StatementRecord | undefined>(
      (worst, statement) => (!worst || statement.ms > worst.ms ? statement : worst),
      undefined,
    );
    const report = (plan: unknown) =>
      logger.warn(
        {
          trace_id: traceId,
          operation_name: state.operationName,
          operation_type: state.operationType,
          route: state.route,
          method: request.method,
          duration_ms: Math.round(ms),
          ...loggedStatements(statements),
          plan,
        },
        'Slow operation',
      );
    const now = performance.now();
    if (!slowest || now - lastExplain < options.explainIntervalMs) {
      report(undefined);
      return;
    }
    lastExplain = now;
    // After the response has gone: the plan costs the client nothing.
    setImmediate(() => {
      options.explain(slowest).then(report, () => report(undefined));
    });
  }

  function unexpected(state: RequestState, error: GraphQLError): void {
    const cause = error.originalError ?? error;
    state.executeSpan?.recordException(cause);
    const ids = state.span?.spanContext();
    logger.error(
      {
        err: cause,
        trace_id: ids?.traceId,
        span_id: ids?.spanId,
        operation: state.operationName,
        path: error.path,
      },
      'Unexpected error in an operation',
    );
    logged.add(error);
  }

  /**
   * Records the type and name of a request's operation as execution or a subscription starts, and
   * opens the span of that phase (`phase`), the parent of the store's statements.
   */
  function operationStarted(
    args: { document: DocumentNode; operationName?: string | null | undefined; contextValue: unknown },
    phase: 'graphql.execute' | 'graphql.subscribe',
  ): RequestState | undefined {
    const request = (args.contextValue as { request?: Request }).request;
    const state = request && states.get(request);
    if (!state) return undefined;
    const operation = getOperationAST(args.document, args.operationName);
    const name = operation?.name?.value ?? args.operationName ?? undefined;
    state.operationType = operation?.operation ?? 'query';
    state.operationName = boundedName(name);
    const traced = sampled(args.contextValue);
    if (traced) {
      const span = (tracer as Tracer).startSpan(phase, {}, operationContext(traced));
      state.executeSpan = span;
      state.scope.trace = { context: trace.setSpan(operationContext(traced), span), span };
    }
    const span = state.operationSpan;
    if (span) {
      // `{type} {name}`, as the semantic conventions name an operation's span.
      span.updateName(name ? `${state.operationType} ${shortLabel(name)}` : state.operationType);
      span.setAttribute('graphql.operation.type', state.operationType);
      if (name) span.setAttribute('graphql.operation.name', boundedText(name));
    }
    return state;
  }

  /** The state of a request from its start, unless its path is never observed. */
  function begin(request: Request): RequestState | undefined {
    const path = pathOf(request.url);
    if (options.untraced.includes(path)) return undefined;
    const state: RequestState = {
      started: performance.now(),
      path,
      // A route of this service's, or none: the label and span name stay bounded.
      route: options.routes.includes(path) ? path : undefined,
      span: undefined,
      operationSpan: undefined,
      operationContext: undefined,
      executeSpan: undefined,
      operationType: undefined,
      operationName: undefined,
      errorCodes: new Set(),
      scope: { statements: [] },
    };
    states.set(request, state);
    return state;
  }

  /** The HTTP server span of a request, joining its caller's W3C trace context. */
  function serverSpan(state: RequestState, request: Request, traced: Tracer): void {
    const { route, path } = state;
    const parent = propagator.extract(ROOT_CONTEXT, request.headers, headerGetter);
    const userAgent = request.headers.get('user-agent');
    const span = traced.startSpan(
      route ? `${request.method} ${route}` : request.method,
      {
        kind: SpanKind.SERVER,
        attributes: {
          'http.request.method': methodLabel(request.method),
          'url.path': boundedText(path),
          'url.scheme': request.url.startsWith('https:') ? 'https' : 'http',
          ...(route ? { 'http.route': route } : {}),
          ...(userAgent ? { 'user_agent.original': boundedText(userAgent) } : {}),
        },
      },
      parent,
    );
    state.span = span;
    if (span.isRecording()) state.scope.trace = { context: trace.setSpan(parent, span), span };
  }

  const plugin: Plugin = {
    // Spans start and end in plain hooks, not Yoga's `instrumentation` wrappers: those wrap every
    // phase of every request in promises, a cost measurable on a page even for a request the
    // sampler drops. Parents are passed explicitly, never through an async context (see
    // operation-scope.ts); a request its sampler drops makes no child.
    onRequest({ request }) {
      const state = begin(request);
      if (state && tracer) serverSpan(state, request, tracer);
    },
    onParse: ({ context }) => phase('graphql.parse', context),
    onValidate: ({ context }) => phase('graphql.validate', context),
    onExecute({ args }) {
      const state = operationStarted(args, 'graphql.execute');
      if (!state) return;
      const span = state.operationSpan;
      return {
        onExecuteDone({ result }) {
          if (Symbol.asyncIterator in result) {
            state.executeSpan?.end();
            return;
          }
          const executionErrors = (result as ExecutionResult).errors ?? [];
          const codes = new Set<string>();
          for (const error of executionErrors) {
            const code = error.extensions?.code;
            codes.add(String(code ?? 'INTERNAL_SERVER_ERROR'));
            // Uncoded: Yoga masks it as "Unexpected error." The cause goes to the trace and the log,
            // with the trace's ids, never to the client.
            if (code === undefined) unexpected(state, error);
          }
          // While the operation span is still open; the request's codes are counted from the
          // result (onResultProcess), which holds these errors too.
          if (codes.size > 0 && span) {
            span.setAttribute('graphql.error.codes', [...codes]);
            span.setStatus({ code: SpanStatusCode.ERROR });
          }
          state.executeSpan?.end();
        },
      };
    },
    onSubscribe({ args }) {
      const state = operationStarted(args, 'graphql.subscribe');
      if (!state) return;
      return {
        onSubscribeResult({ result }) {
          // A subscription refused before its stream opens (a bad argument): over the
          // single-connection protocol its errors never pass onResultProcess, so they are counted here.
          if (!(Symbol.asyncIterator in result)) {
            const codes = (result.errors ?? []).map((error) =>
              String(error.extensions?.code ?? 'INTERNAL_SERVER_ERROR'),
            );
            for (const code of codes) state.errorCodes.add(code);
            if (codes.length > 0) {
              state.operationSpan?.setAttribute('graphql.error.codes', [...new Set(codes)]);
              state.operationSpan?.setStatus({ code: SpanStatusCode.ERROR });
            }
          }
          state.executeSpan?.end();
        },
        onSubscribeError() {
          state.executeSpan?.end();
        },
      };
    },
    onResultProcess({ request, result }) {
      // Every error of the answer, from parsing, validation, limits or execution.
      const state = states.get(request);
      if (!state || Array.isArray(result) || Symbol.asyncIterator in (result as object)) return;
      for (const error of (result as ExecutionResult).errors ?? []) {
        state.errorCodes.add(String(error.extensions?.code ?? 'INTERNAL_SERVER_ERROR'));
      }
      state.operationName ??= (result as ExecutionResult).errors?.length ? '(invalid)' : undefined;
    },
    onResponse({ request, response }) {
      const state = states.get(request);
      if (!state) return;
      states.delete(request);
      const ms = performance.now() - state.started;
      const status = response.status;
      const codes = [...state.errorCodes];
      const attributes: Attributes = {
        'http.request.method': methodLabel(request.method),
        'http.response.status_code': status,
        ...(state.route ? { 'http.route': state.route } : {}),
      };
      duration.record(ms / 1000, attributes);
      if (state.operationType) {
        operations.add(1, {
          'graphql.operation.type': state.operationType,
          'graphql.operation.name': state.operationName ?? '(anonymous)',
          outcome: codes.length > 0 ? 'error' : 'ok',
        });
      } else if (state.route === '/graphql' && codes.length > 0) {
        operations.add(1, {
          'graphql.operation.type': 'unknown',
          'graphql.operation.name': '(invalid)',
          outcome: 'error',
        });
      }
      for (const code of codes) errors.add(1, { 'graphql.error.code': errorCodes.bounded(code) });

      const span = state.span;
      // Sampled out: no trace to point at.
      const traceId = span?.isRecording() ? span.spanContext().traceId : undefined;
      state.operationSpan?.end();
      if (span) {
        span.setAttribute('http.response.status_code', status);
        if (codes.length > 0) {
          span.setAttribute('graphql.error.codes', codes);
        }
        if (status >= 500 || codes.length > 0) span.setStatus({ code: SpanStatusCode.ERROR });
        span.end();
      }
      // The level first: below info, the line's object is not even built.
      if (
        options.accessLog.enabled &&
        logger.isLevelEnabled('info') &&
        Math.random() < options.accessLog.sampleRate
      ) {
        logger.info(
          {
            trace_id: traceId,
            method: request.method,
            route: state.route ?? '(unknown)',
            status,
            duration_ms: Math.round(ms * 10) / 10,
            operation_name: state.operationName,
            operation_type: state.operationType,
            error_codes: codes.length > 0 ? codes : undefined,
          },
          'request',
        );
      }
      if (ms >= options.slowOperationMs) slowOperation(state, request, ms, traceId);
    },
  };
  return {
    plugin,
    scopeOf: (request) => states.get(request)?.scope,
    alreadyLogged: (error) => typeof error === 'object' && error !== null && logged.has(error),
  };
}
