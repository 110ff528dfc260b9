/**
 * What agents push (OTLP, Prometheus remote-write) in the service's terms: a metric's value of a
 * source at an instant. Both receivers decode into these points; the points of one source and
 * instant then become one sample, which goes through the mutation's validation and writing.
 */
import type { SampleField } from '../domain/agent-mapping.js';
import type { SourceLabels } from '../domain/source.js';
import type { BatchCounts } from '../domain/writes.js';
import type { OperationScope } from '../observability/operation-scope.js';
import { PayloadTooLargeError } from './agent-payload.js';
import { ingestSamples, type SampleInput } from './samples.js';

/** One value an agent reported. */
export interface AgentPoint {
  field: SampleField;
  timestampMs: number;
  value: number;
  /** The source's name; undefined: none of the source labels was given (the default source). */
  source: string | undefined;
  /**
   * The source's labels as this point gives them (a resource's other attributes, a load series'
   * other labels); undefined: the point says nothing of them.
   */
  labels: SourceLabels | undefined;
}

/**
 * Which label names the source (AGENT_SOURCE_LABELS' rule): the first of `sourceLabels` that
 * `labelValue` gives a value for, with that value; undefined: none (the default source).
 */
export function namedSource(
  sourceLabels: readonly string[],
  labelValue: (label: string) => string | undefined,
): { label: string; source: string } | undefined {
  for (const label of sourceLabels) {
    const source = labelValue(label);
    if (source !== undefined) return { label, source };
  }
  return undefined;
}

/** The source named by the first of `sourceLabels` present in `labels`, and the labels left. */
export function splitSource(
  labels: Readonly<Record<string, string>>,
  sourceLabels: readonly string[],
): { source: string | undefined; labels: SourceLabels } {
  // Frozen: every point of the source shares them, and they are checked once (checkLabels).
  const named = namedSource(sourceLabels, (label) =>
    Object.hasOwn(labels, label) ? labels[label] : undefined,
  );
  if (named === undefined) return { source: undefined, labels: Object.freeze({ ...labels }) };
  const { [named.label]: _source, ...rest } = labels;
  return { source: named.source, labels: Object.freeze(rest) };
}

/** Samples made of points, each with how many points it holds (what a refusal of it refuses). */
export interface AgentSamples {
  samples: SampleInput[];
  pointCounts: number[];
}

/** The labels two label sets agree on; either unknown: the other. */
function sharedLabels(a: SourceLabels | undefined, b: SourceLabels | undefined): SourceLabels | undefined {
  if (a === undefined || b === undefined || a === b) return a ?? b;
  const shared: Record<string, string> = {};
  for (const [name, value] of Object.entries(a)) if (b[name] === value) shared[name] = value;
  return shared;
}

/**
 * The points of one source and instant as one sample. Concurrencies are added: an up-down
 * counter such as active requests comes as one series per method or route, and the source's
 * concurrency is their total (of the series in one push: a sample merges into a stored one by
 * replacing the values it holds). Of several CPU loads the last is kept: a source has one load.
 * The sample's labels are those all its points that give labels agree on.
 */
export function samplesOfPoints(points: readonly AgentPoint[]): AgentSamples {
  /** Per source (undefined: the default), each timestamp's sample. */
  const bySource = new Map<string | undefined, Map<number, number>>();
  const samples: SampleInput[] = [];
  const pointCounts: number[] = [];
  const labelsOf: (SourceLabels | undefined)[] = [];
  for (const point of points) {
    let byTime = bySource.get(point.source);
    if (!byTime) {
      byTime = new Map();
      bySource.set(point.source, byTime);
    }
    const index = byTime.get(point.timestampMs);
    if (index === undefined) {
      byTime.set(point.timestampMs, samples.length);
      samples.push({
        timestamp: new Date(point.timestampMs),
        source: point.source,
        [point.field]: point.value,
      });
      pointCounts.push(1);
      labelsOf.push(point.labels);
      continue;
    }
    const sample = samples[index] as SampleInput;
    if (point.field === 'concurrency') sample.concurrency = (sample.concurrency ?? 0) + point.value;
    else sample.cpuLoad = point.value;
    pointCounts[index] = (pointCounts[index] as number) + 1;
    labelsOf[index] = sharedLabels(labelsOf[index], point.labels);
  }
  samples.forEach((sample, index) => {
    // Labels describe a named source; the default source's are left as they are.
    if (sample.source !== undefined && labelsOf[index] !== undefined) sample.labels = labelsOf[index];
  });
  return { samples, pointCounts };
}

/** Points refused, each reason once per source and field, the first of them kept. */
export interface PointRefusals {
  points: number;
  reasons: string[];
}

/** Points a sample may be made of: its load, and its concurrency in a few series (methods, routes). */
const POINTS_PER_SAMPLE = 4;

/** How many refusal reasons an answer quotes; the count covers every refused point. */
const QUOTED_REASONS = 10;

export function addRefusal(refusals: PointRefusals, points: number, reason: string): void {
  refusals.points += points;
  if (refusals.reasons.length < QUOTED_REASONS) refusals.reasons.push(reason);
}

/** The refusals in a sentence: how many points, and the first reasons. */
export function refusalMessage(refusals: PointRefusals): string {
  const more = refusals.points > refusals.reasons.length ? '; ...' : '';
  return `${refusals.points} data point${refusals.points === 1 ? '' : 's'} refused: ${refusals.reasons.join('; ')}${more}`;
}

/**
 * Stores the points as samples through the mutation's path (validation, MAX_FUTURE, MAX_SOURCES,
 * group commit), merging into a stored sample of the same source and instant: an agent's CPU load
 * and concurrency of one scrape may come in separate requests. Resending is harmless.
 */
export async function ingestAgentPoints(
  store: Parameters<typeof ingestSamples>[0],
  points: readonly AgentPoint[],
  options: {
    maxSamples: number;
    batchSize: number;
    maxFutureSeconds: number | undefined;
    scope?: OperationScope;
  },
  refusals: PointRefusals,
): Promise<BatchCounts> {
  // Before folding: a push of a million points of one sample would fold into one.
  if (points.length > options.maxSamples * POINTS_PER_SAMPLE)
    throw new PayloadTooLargeError(
      `the body holds ${points.length} data points; at most ${options.maxSamples * POINTS_PER_SAMPLE} are accepted at once (${POINTS_PER_SAMPLE} times INGEST_MAX_SAMPLES)`,
    );
  const { samples, pointCounts } = samplesOfPoints(points);
  if (samples.length > options.maxSamples)
    throw new PayloadTooLargeError(
      `the body holds ${samples.length} samples; at most ${options.maxSamples} are accepted at once (INGEST_MAX_SAMPLES)`,
    );
  const { rejected, ...counts } = await ingestSamples(store, samples, {
    onConflict: 'merge',
    batchSize: options.batchSize,
    maxFutureSeconds: options.maxFutureSeconds,
    ...(options.scope ? { scope: options.scope } : {}),
  });
  for (const { index, field, reason } of rejected) {
    const sample = samples[index] as SampleInput;
    addRefusal(
      refusals,
      pointCounts[index] as number,
      `${sample.source ?? 'the default source'} at ${sample.timestamp.toISOString()}: ${field} ${reason}`,
    );
  }
  return counts;
}
