import { futureHorizon, type MetricSample, validateRecord } from '../domain/sample.js';
import type { BatchCounts, ConflictMode } from '../domain/writes.js';
import type { OperationScope } from '../observability/operation-scope.js';
import type { MetricStore } from '../store/metric-store.js';
import type { BatchTarget } from '../store/sample-batch.js';
import { BatchWriter } from './batch-writer.js';
import { DEFAULT_BATCH_SIZE } from './pipeline.js';

/** One sample as the GraphQL mutation receives it (the DateTime scalar has parsed the timestamp). */
export interface SampleInput {
  timestamp: Date;
  cpuLoad: number;
  concurrency: number;
}

/** A refused sample: `index` is its position in the input list, `field` the MetricInput field. */
export interface SampleRejection {
  index: number;
  field: string;
  reason: string;
}

export interface SamplesResult extends BatchCounts {
  rejected: SampleRejection[];
}

/**
 * Validates and stores a list of samples (the GraphQL mutation), with the same rules as the file
 * readers, timestamps past now + `maxFutureSeconds` (MAX_FUTURE) included. Valid samples are
 * stored even when others are refused. More than one batch runs in one transaction, so a call is
 * stored whole or not at all and its counts are never half true.
 */
export async function ingestSamples(
  store: Pick<MetricStore, 'inTransaction'>,
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
  const samples: MetricSample[] = [];
  const horizon = futureHorizon(options.maxFutureSeconds);
  inputs.forEach((input, index) => {
    const result = validateRecord({ ...input }, false, horizon);
    if (result.ok) samples.push(result.sample);
    else rejected.push({ index, ...result.problem });
  });
  const batchSize = options.batchSize ?? DEFAULT_BATCH_SIZE;
  const write = async (target: BatchTarget) => {
    const writer = new BatchWriter(target, { batchSize, mode: options.onConflict ?? 'skip' });
    for (const sample of samples) await writer.add(sample);
    return writer.finish();
  };
  // One transaction whether the samples make one batch or several.
  const counts = await store.inTransaction(write, options.scope);
  return { ...counts, rejected };
}
