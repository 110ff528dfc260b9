// Which OTEL_* settings turn tracing on, and which the service refuses.
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../src/config.js';
import { telemetrySettings } from '../src/observability/telemetry.js';

describe('telemetrySettings', () => {
  it('leaves tracing off when no exporter and no endpoint is set', () => {
    expect(telemetrySettings({}, 'metrics-api')).toMatchObject({
      tracesExporter: 'none',
      serviceName: 'metrics-api',
    });
  });

  it('turns OTLP on for an endpoint, and honours the exporter, protocol and service name', () => {
    expect(telemetrySettings({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' }, 'x')).toMatchObject({
      tracesExporter: 'otlp',
      protocol: 'http/protobuf',
    });
    expect(
      telemetrySettings(
        {
          OTEL_TRACES_EXPORTER: 'console',
          OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
          OTEL_SERVICE_NAME: 'api-eu',
        },
        'x',
      ),
    ).toMatchObject({ tracesExporter: 'console', protocol: 'http/json', serviceName: 'api-eu' });
  });

  it('keeps everything off with OTEL_SDK_DISABLED, whatever else is set', () => {
    const settings = telemetrySettings(
      {
        OTEL_SDK_DISABLED: 'true',
        OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318',
        OTEL_METRICS_EXPORTER: 'otlp',
      },
      'x',
    );
    expect(settings).toMatchObject({ disabled: true, tracesExporter: 'none', otlpMetrics: false });
  });

  it('refuses gRPC and unknown exporters with the variable named', () => {
    expect(() => telemetrySettings({ OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' }, 'x')).toThrow(ConfigError);
    expect(() => telemetrySettings({ OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' }, 'x')).toThrow(
      /OTEL_EXPORTER_OTLP_PROTOCOL/,
    );
    expect(() => telemetrySettings({ OTEL_TRACES_EXPORTER: 'zipkin' }, 'x')).toThrow(/OTEL_TRACES_EXPORTER/);
  });
});
