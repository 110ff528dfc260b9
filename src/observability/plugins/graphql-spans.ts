import { type Context, type Span, SpanStatusCode, type Tracer, trace } from '@opentelemetry/api';
import type { ExecutionResult } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import { boundedText, shortLabel } from '../bounds.js';
import {
  errorCode,
  type ObservedRequest,
  type ObservedRequests,
  unexpectedCause,
} from './observed-requests.js';

/** The GraphQL spans of a sampled request. */
interface OperationSpans {
  /** graphql.operation, begun by the operation's first phase; it ends with the response. */
  span: Span;
  /** The trace context of the operation span, the parent of parse, validate and execute. */
  context: Context;
}

/**
 * The GraphQL spans of every sampled request, as the GraphQL semantic conventions name them: the
 * operation span (`{type} {name}`, with graphql.operation.type and .name), with its parse,
 * validate and execute (or subscribe) children, beneath the HTTP server span (http-spans.ts). The
 * execute span records the cause of an unexpected error; the operation span, the error codes of
 * its result. A request whose trace is not kept makes none.
 */
export function useGraphQLSpans(options: { tracer: Tracer; requests: ObservedRequests }): Plugin {
  const { tracer, requests } = options;
  const operations = new WeakMap<ObservedRequest, OperationSpans>();

  /** The GraphQL spans of an observed request, begun if need be; none unless its trace is kept. */
  function spansOf(observed: ObservedRequest | undefined): OperationSpans | undefined {
    const parent = observed?.scope.trace;
    if (!parent) return undefined;
    let spans = operations.get(observed);
    if (!spans) {
      const span = tracer.startSpan('graphql.operation', {}, parent.context);
      spans = { span, context: trace.setSpan(parent.context, span) };
      operations.set(observed, spans);
    }
    return spans;
  }

  /** A span for one GraphQL phase of a sampled request, ended by the hook's done callback. */
  function phaseSpan(name: string, graphqlContext: unknown): (() => void) | undefined {
    const spans = spansOf(requests.ofContext(graphqlContext));
    if (!spans) return undefined;
    const span = tracer.startSpan(name, {}, spans.context);
    return () => span.end();
  }

  /**
   * Opens the span of execution or a subscription (returned with the operation's spans) as it
   * starts, the parent of the store's statements from then on, and names the operation span after
   * the operation.
   */
  function operationStarted(
    contextValue: unknown,
    name: 'graphql.execute' | 'graphql.subscribe',
  ): { spans: OperationSpans; phase: Span } | undefined {
    const observed = requests.ofContext(contextValue);
    const spans = spansOf(observed);
    if (!spans || !observed?.operation) return undefined;
    const { operation, scope } = observed;
    const phase = tracer.startSpan(name, {}, spans.context);
    scope.trace = { context: trace.setSpan(spans.context, phase), span: phase };
    // `{type} {name}`, as the semantic conventions name an operation's span.
    spans.span.updateName(
      operation.name ? `${operation.type} ${shortLabel(operation.name)}` : operation.type,
    );
    spans.span.setAttribute('graphql.operation.type', operation.type);
    if (operation.name) spans.span.setAttribute('graphql.operation.name', boundedText(operation.name));
    return { spans, phase };
  }

  /** The operation span's error codes and status, while it is still open. */
  function failed(spans: OperationSpans, codes: ReadonlySet<string>): void {
    if (codes.size === 0) return;
    spans.span.setAttribute('graphql.error.codes', [...codes]);
    spans.span.setStatus({ code: SpanStatusCode.ERROR });
  }

  return {
    onParse: ({ context }) => phaseSpan('graphql.parse', context),
    onValidate: ({ context }) => phaseSpan('graphql.validate', context),
    onExecute({ args }) {
      const started = operationStarted(args.contextValue, 'graphql.execute');
      if (!started) return;
      const { spans, phase } = started;
      return {
        onExecuteDone({ result }) {
          if (!(Symbol.asyncIterator in result)) {
            const executionErrors = (result as ExecutionResult).errors ?? [];
            for (const error of executionErrors) {
              const cause = unexpectedCause(error);
              if (cause) phase.recordException(cause);
            }
            // The request's codes are counted from the result (observed-requests.ts), which holds
            // these errors too.
            failed(spans, new Set(executionErrors.map(errorCode)));
          }
          phase.end();
        },
      };
    },
    onSubscribe({ args }) {
      const started = operationStarted(args.contextValue, 'graphql.subscribe');
      if (!started) return;
      const { spans, phase } = started;
      return {
        onSubscribeResult({ result }) {
          // A subscription refused before its stream opens (a bad argument).
          if (!(Symbol.asyncIterator in result)) failed(spans, new Set((result.errors ?? []).map(errorCode)));
          phase.end();
        },
        onSubscribeError() {
          phase.end();
        },
      };
    },
    onResponse({ request }) {
      const observed = requests.finished(request);
      if (observed) operations.get(observed)?.span.end();
    },
  };
}
