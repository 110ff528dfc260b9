import { context, type Meter, type Tracer } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { OTLPMetricExporter } from '@opentelemetry/exporter-metrics-otlp-proto';
import { PrometheusExporter, PrometheusSerializer } from '@opentelemetry/exporter-prometheus';
import { OTLPTraceExporter as OTLPJsonTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { OTLPTraceExporter as OTLPProtoTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { RuntimeNodeInstrumentation } from '@opentelemetry/instrumentation-runtime-node';
import {
  defaultResource,
  detectResources,
  envDetector,
  resourceFromAttributes,
} from '@opentelemetry/resources';
import {
  MeterProvider,
  PeriodicExportingMetricReader,
  type ResourceMetrics,
} from '@opentelemetry/sdk-metrics';
import {
  BatchSpanProcessor,
  ConsoleSpanExporter,
  SimpleSpanProcessor,
  type SpanExporter,
} from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { ATTR_SERVICE_NAME, ATTR_SERVICE_VERSION } from '@opentelemetry/semantic-conventions';
import { z } from 'zod';
import { ConfigError } from '../config.js';
import { MAX_TEXT_LENGTH } from './bounds.js';
import { buildInfo } from './build-info.js';

/**
 * Names whose Prometheus form breaks Prometheus' own naming rules (`promtool check metrics`): a
 * gauge named `..._count` reads as a histogram's or summary's count series. OTLP keeps the
 * semantic conventions' names; only the text exposition uses these.
 */
const PROMETHEUS_NAMES: ReadonlyMap<string, string> = new Map([
  ['db.client.connection.count', 'db.client.connections'],
]);

/** `metrics` with the names Prometheus text gives them. */
function prometheusNamed(metrics: ResourceMetrics): ResourceMetrics {
  return {
    ...metrics,
    scopeMetrics: metrics.scopeMetrics.map((scope) => ({
      ...scope,
      metrics: scope.metrics.map((metric) => {
        const name = PROMETHEUS_NAMES.get(metric.descriptor.name);
        return name ? { ...metric, descriptor: { ...metric.descriptor, name } } : metric;
      }),
    })),
  };
}

/**
 * The standard OpenTelemetry variables this service honours (the SDK reads the endpoint, headers,
 * sampler and resource attributes itself). Tracing is on only when an exporter is named or an OTLP
 * endpoint is given: with none of them set, no tracer provider is registered and every span is the
 * API's no-op.
 */
const telemetryEnvironment = z.object({
  OTEL_SDK_DISABLED: z.stringbool().default(false),
  OTEL_SERVICE_NAME: z.string().min(1).optional(),
  OTEL_TRACES_EXPORTER: z.enum(['otlp', 'console', 'none']).optional(),
  OTEL_METRICS_EXPORTER: z.enum(['otlp', 'prometheus', 'none']).optional(),
  OTEL_EXPORTER_OTLP_ENDPOINT: z.url().optional(),
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: z.url().optional(),
  OTEL_EXPORTER_OTLP_PROTOCOL: z.enum(['http/protobuf', 'http/json']).default('http/protobuf'),
  // The specification's default; the SDK's reader does not read the variable itself.
  OTEL_METRIC_EXPORT_INTERVAL: z.coerce.number().int().min(100).max(86_400_000).default(60_000),
});

export interface TelemetrySettings {
  disabled: boolean;
  serviceName: string;
  tracesExporter: 'otlp' | 'console' | 'none';
  otlpMetrics: boolean;
  /** How often metrics are pushed over OTLP, when they are. */
  metricExportIntervalMs: number;
  protocol: 'http/protobuf' | 'http/json';
}

/** Reads the OTEL_* variables, refusing values the service cannot honour (gRPC, unknown exporters). */
export function telemetrySettings(env: NodeJS.ProcessEnv, defaultServiceName: string): TelemetrySettings {
  const present = Object.fromEntries(
    Object.entries(env).filter(([, value]) => value !== undefined && value !== ''),
  );
  const result = telemetryEnvironment.safeParse(present);
  if (!result.success) {
    throw new ConfigError(result.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`));
  }
  const e = result.data;
  const endpoint = e.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ?? e.OTEL_EXPORTER_OTLP_ENDPOINT;
  return {
    disabled: e.OTEL_SDK_DISABLED,
    serviceName: e.OTEL_SERVICE_NAME ?? defaultServiceName,
    tracesExporter: e.OTEL_SDK_DISABLED ? 'none' : (e.OTEL_TRACES_EXPORTER ?? (endpoint ? 'otlp' : 'none')),
    otlpMetrics: !e.OTEL_SDK_DISABLED && e.OTEL_METRICS_EXPORTER === 'otlp',
    metricExportIntervalMs: e.OTEL_METRIC_EXPORT_INTERVAL,
    protocol: e.OTEL_EXPORTER_OTLP_PROTOCOL,
  };
}

export interface Telemetry {
  /** A no-op tracer unless tracing is on. */
  /** Undefined unless tracing is on: callers then make no span at all. */
  tracer: Tracer | undefined;
  meter: Meter;
  /** The metrics in Prometheus' text format, as of now. */
  scrape(): Promise<string>;
  /** Exports what is buffered and stops; the last step of every shutdown. */
  shutdown(): Promise<void>;
}

function traceExporter(settings: TelemetrySettings): SpanExporter | undefined {
  if (settings.tracesExporter === 'console') return new ConsoleSpanExporter();
  if (settings.tracesExporter === 'none') return undefined;
  return settings.protocol === 'http/json' ? new OTLPJsonTraceExporter() : new OTLPProtoTraceExporter();
}

let contextManagerSet = false;

/**
 * Starts OpenTelemetry for one process: the tracer provider (when tracing is on, with a batch
 * processor, W3C trace context and AsyncLocalStorage context), and the meter provider that
 * `/metrics` reads (and OTLP, when OTEL_METRICS_EXPORTER=otlp), with Node's runtime metrics.
 * `spanExporter` replaces the configured exporter and receives each span as it ends (tests pass
 * an in-memory one); `asyncContext` lets `startActiveSpan` nest spans through async calls.
 */
export function startTelemetry(
  settings: TelemetrySettings,
  options: { spanExporter?: SpanExporter; runtimeMetrics?: boolean; asyncContext?: boolean } = {},
): Telemetry {
  const resource = defaultResource()
    .merge(
      resourceFromAttributes({
        [ATTR_SERVICE_NAME]: settings.serviceName,
        [ATTR_SERVICE_VERSION]: buildInfo.version,
      }),
    )
    .merge(detectResources({ detectors: [envDetector] }));

  const exporter = options.spanExporter ?? traceExporter(settings);
  let tracerProvider: NodeTracerProvider | undefined;
  if (exporter && !settings.disabled) {
    const processor = options.spanExporter
      ? new SimpleSpanProcessor(exporter)
      : new BatchSpanProcessor(exporter);
    tracerProvider = new NodeTracerProvider({
      resource,
      spanProcessors: [processor],
      // What this service sets itself is bounded with a marker (bounds.ts); this bounds the rest,
      // such as an exception's message that quotes a client's input, cut without one.
      spanLimits: { attributeValueLengthLimit: 2 * MAX_TEXT_LENGTH },
    });
    // The provider is handed to who needs it, not made global, so several telemetries can live in
    // one process (tests). Only a command asks for an async context (AsyncLocalStorage) for its
    // spans to nest through: the server passes parents explicitly (operation-scope.ts).
    if (options.asyncContext && !contextManagerSet) {
      context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
      contextManagerSet = true;
    }
  }

  const prometheus = new PrometheusExporter({ preventServerStart: true });
  const readers = [
    prometheus,
    ...(settings.otlpMetrics
      ? [
          new PeriodicExportingMetricReader({
            exporter: new OTLPMetricExporter(),
            exportIntervalMillis: settings.metricExportIntervalMs,
          }),
        ]
      : []),
  ];
  const meterProvider = new MeterProvider({ resource, readers });
  const runtime = options.runtimeMetrics === false ? undefined : new RuntimeNodeInstrumentation();
  runtime?.setMeterProvider(meterProvider);
  runtime?.enable();
  // Scope labels (otel_scope_name, otel_scope_version) on every series add nothing here: one service, one scope.
  const serializer = new PrometheusSerializer(undefined, false, undefined, false, true);

  return {
    tracer: tracerProvider?.getTracer('metrics-api', buildInfo.version),
    meter: meterProvider.getMeter('metrics-api', buildInfo.version),
    async scrape() {
      const { resourceMetrics } = await prometheus.collect();
      return serializer.serialize(prometheusNamed(resourceMetrics));
    },
    async shutdown() {
      runtime?.disable();
      await Promise.all([tracerProvider?.shutdown(), meterProvider.shutdown()]);
    },
  };
}
