import { InMemorySpanExporter } from '@opentelemetry/sdk-trace-base';
import type pg from 'pg';
import { DatabaseTelemetry, databaseAddress } from '../../src/observability/database-telemetry.js';
import { startTelemetry, type Telemetry, telemetrySettings } from '../../src/observability/telemetry.js';

/** A statement a store ran, as its span tells it. */
export interface TracedStatement {
  operation: string;
  text: string;
  failed: boolean;
}

/**
 * The statements stores ran, read off their spans in memory: for tests that check which
 * statements ran, not only what came of them.
 */
export class TracedStatements {
  readonly #exporter = new InMemorySpanExporter();
  readonly #telemetry: Telemetry;

  constructor(serviceName: string) {
    this.#telemetry = startTelemetry(telemetrySettings({ OTEL_SERVICE_NAME: serviceName }, 'x'), {
      spanExporter: this.#exporter,
      runtimeMetrics: false,
    });
  }

  /** The telemetry to give a MetricStore on the database at `url` through `pool`. */
  telemetryFor({ url, pool }: { url: string; pool: pg.Pool }): DatabaseTelemetry {
    return new DatabaseTelemetry({ tracer: this.#telemetry.tracer, address: databaseAddress(url), pool });
  }

  /** The statements traced since the last call, in the order they ended. */
  take(): TracedStatement[] {
    const taken = this.#exporter.getFinishedSpans().map((span) => ({
      operation: String(span.attributes['db.operation.name']),
      text: String(span.attributes['db.query.text']),
      failed: span.attributes['error.type'] !== undefined,
    }));
    this.#exporter.reset();
    return taken;
  }

  shutdown(): Promise<void> {
    return this.#telemetry.shutdown();
  }
}
