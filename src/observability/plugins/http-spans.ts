import { ROOT_CONTEXT, type Span, SpanKind, SpanStatusCode, type Tracer, trace } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import type { Plugin } from 'graphql-yoga';
import { boundedText } from '../bounds.js';
import type { ObservedRequest, ObservedRequests } from './observed-requests.js';

const propagator = new W3CTraceContextPropagator();
const headerGetter = {
  keys: (headers: Headers) => [...headers.keys()],
  get: (headers: Headers, key: string) => headers.get(key) ?? undefined,
};

/**
 * The HTTP server span of every observed request, joining its caller's W3C trace context: the
 * root of the request's trace and, when sampled, the parent its work starts under (the scope's
 * trace). Its ids go to the observed request, for the log lines that name the trace.
 */
export function useHttpSpans(options: { tracer: Tracer; requests: ObservedRequests }): Plugin {
  const { tracer, requests } = options;
  const serverSpans = new WeakMap<ObservedRequest, Span>();
  return {
    onRequest({ request }) {
      const observed = requests.of(request);
      if (!observed) return;
      const { route, path } = observed;
      const parent = propagator.extract(ROOT_CONTEXT, request.headers, headerGetter);
      const userAgent = request.headers.get('user-agent');
      const span = tracer.startSpan(
        route ? `${request.method} ${route}` : request.method,
        {
          kind: SpanKind.SERVER,
          attributes: {
            'http.request.method': observed.method,
            'url.path': boundedText(path),
            'url.scheme': request.url.startsWith('https:') ? 'https' : 'http',
            ...(route ? { 'http.route': route } : {}),
            ...(userAgent ? { 'user_agent.original': boundedText(userAgent) } : {}),
          },
        },
        parent,
      );
      serverSpans.set(observed, span);
      const { traceId, spanId } = span.spanContext();
      const recorded = span.isRecording();
      observed.serverSpan = { traceId, spanId, recorded };
      if (recorded) observed.scope.trace = { context: trace.setSpan(parent, span), span };
    },
    onResponse({ request, response }) {
      const observed = requests.finished(request);
      const span = observed && serverSpans.get(observed);
      if (!span) return;
      const status = response.status;
      const codes = [...observed.errorCodes];
      span.setAttribute('http.response.status_code', status);
      if (codes.length > 0) {
        span.setAttribute('graphql.error.codes', codes);
      }
      if (status >= 500 || codes.length > 0) span.setStatus({ code: SpanStatusCode.ERROR });
      span.end();
    },
  };
}
