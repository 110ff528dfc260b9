import {
  futureHorizon,
  type MetricSample,
  type Problem,
  validateRecord,
  withSource,
} from '../domain/sample.js';
import type { SourceLabels } from '../domain/source.js';
import type { BatchCounts, ConflictMode } from '../domain/writes.js';
import type { OperationScope } from '../observability/operation-scope.js';
import type { MetricStore } from '../store/metric-store.js';
import { Batch, type BatchTarget } from '../store/sample-batch.js';
import { BatchWriter } from './batch-writer.js';
import { DEFAULT_BATCH_SIZE } from './pipeline.js';

/** One sample as the GraphQL mutation receives it (the DateTime scalar has parsed the timestamp). */
export interface SampleInput {
  timestamp: Date;
  cpuLoad?: number | null | undefined;
  concurrency?: number | null | undefined;
  source?: string | null | undefined;
  /** A list (the mutation's LabelInput) or an object of name to value (the agent receivers). */
  labels?: readonly { name: string; value: string }[] | SourceLabels | null | undefined;
}

/**
 * A refused sample: `index` is its position in the input list, `field` the MetricInput field;
 * `code` marks a refusal not about the sample's content (SOURCE_LIMIT_EXCEEDED).
 */
export interface SampleRejection {
  index: number;
  field: string;
  reason: string;
  code?: string | undefined;
}

export interface SamplesResult extends BatchCounts {
  rejected: SampleRejection[];
}

/** The validator names the fields of files; the mutation's input calls one of them otherwise. */
const INPUT_FIELDS: Readonly<Record<string, string>> = { cpu_load: 'cpuLoad' };

const rejection = (index: number, problem: Problem): SampleRejection => ({
  index,
  ...problem,
  field: INPUT_FIELDS[problem.field] ?? problem.field,
});

/**
 * Validates and stores a list of samples (the GraphQL mutation), with the same rules as the file
 * readers, timestamps past now + `maxFutureSeconds` (MAX_FUTURE) included. Valid samples are
 * stored even when others are refused, as are those of a new source past MAX_SOURCES. A call is
 * stored in one transaction, whole or not at all, and its counts are never half true: one of
 * a batch or less is written with the calls that come at the same time (the store's group
 * commit: many writers of a sample each then share a transaction), a larger one on its own.
 */
export async function ingestSamples(
  store: Pick<MetricStore, 'inTransaction' | 'writeGrouped'>,
  inputs: readonly SampleInput[],
  options: {
    onConflict?: ConflictMode;
    batchSize?: number;
    maxFutureSeconds?: number | undefined;
    /** The request's: the statements are traced in its trace and recorded for its slow-operation log. */
    scope?: OperationScope;
  } = {},
): Promise<SamplesResult> {
  const rejected: SampleRejection[] = [];
  const samples: { sample: MetricSample; index: number }[] = [];
  const horizon = futureHorizon(options.maxFutureSeconds);
  inputs.forEach((input, index) => {
    const result = validateRecord({ ...input }, false, horizon);
    const problem = result.ok ? withSource(result.sample, undefined) : result.problem;
    if (problem) rejected.push(rejection(index, problem));
    else if (result.ok) samples.push({ sample: result.sample, index });
  });
  const batchSize = options.batchSize ?? DEFAULT_BATCH_SIZE;
  const mode = options.onConflict ?? 'skip';
  const refuse = (index: number, problem: Problem) => rejected.push(rejection(index, problem));
  let counts: BatchCounts;
  if (samples.length <= batchSize) {
    const batch = new Batch(Math.max(1, samples.length));
    for (const { sample, index } of samples) batch.add(sample, index);
    const { inserted, updated, duplicates, refused } = await store.writeGrouped(batch, mode, options.scope);
    for (const { origin, problem } of refused) refuse(origin, problem);
    counts = { inserted, updated, duplicates };
  } else {
    const write = async (target: BatchTarget) => {
      const writer = new BatchWriter(target, { batchSize, mode, onRefused: refuse });
      for (const { sample, index } of samples) await writer.add(sample, index);
      return writer.finish();
    };
    counts = await store.inTransaction(write, options.scope);
  }
  rejected.sort((a, b) => a.index - b.index);
  return { ...counts, rejected };
}
