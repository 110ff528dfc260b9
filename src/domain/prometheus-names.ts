/**
 * The samples as Prometheus names them: two metrics per source, `cpu_load` and `concurrency`,
 * each series labelled with `source` (the source's name) and the source's labels. Label names
 * Prometheus cannot write (OpenTelemetry's `k8s.pod.name`) are shown as Prometheus' own OTLP
 * translation shows them, every other character as `_` (`k8s_pod_name`).
 */
import type { SampleField } from './agent-mapping.js';

export const METRIC_NAME_LABEL = '__name__';
export const SOURCE_LABEL = 'source';

/** The stored metrics by their Prometheus names, with the sample field each reads. */
export const PROMETHEUS_METRICS: Readonly<Record<string, SampleField>> = {
  concurrency: 'concurrency',
  cpu_load: 'cpuLoad',
};

/** What /api/v1/metadata says of each metric. */
export const METRIC_HELP: Readonly<Record<string, string>> = {
  concurrency: 'Concurrency of the source: work in progress when the sample was taken.',
  cpu_load: 'CPU load of the source when the sample was taken.',
};

/** A stored label name as Prometheus can write it. */
export function prometheusLabelName(name: string): string {
  const replaced = name.replace(/[^A-Za-z0-9_]/g, '_');
  return /^[0-9]/.test(replaced) ? `_${replaced}` : replaced;
}
