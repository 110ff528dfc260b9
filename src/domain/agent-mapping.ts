/**
 * How what agents push maps onto samples: which metric names are CPU loads, which are
 * concurrencies, and which attributes or labels name a sample's source. The receivers of OTLP
 * and Prometheus remote-write share it, so one table (AGENT_* variables) covers both.
 */

/** The sample field a metric's values are stored in. */
export type SampleField = 'cpuLoad' | 'concurrency';

export interface AgentMapping {
  /** Metric names whose values are CPU loads (OTLP's `system.cpu.load_average.1m`, node_exporter's `node_load1`). */
  cpuLoadMetrics: readonly string[];
  /** Metric names whose values are concurrencies (`http.server.active_requests`). */
  concurrencyMetrics: readonly string[];
  /** Attribute or label names that name the source, the first one present winning. */
  sourceLabels: readonly string[];
}

/** The field each mapped metric name is stored in. */
export function fieldsByMetric(mapping: AgentMapping): ReadonlyMap<string, SampleField> {
  return new Map<string, SampleField>([
    ...mapping.cpuLoadMetrics.map((name) => [name, 'cpuLoad'] as const),
    ...mapping.concurrencyMetrics.map((name) => [name, 'concurrency'] as const),
  ]);
}
