import { createHash, timingSafeEqual } from 'node:crypto';
import { builder } from '../builder.js';
import { badUserInput, userError } from '../errors.js';
import { ingestSamples, type SamplesResult } from '../ingest/index.js';

const IngestConflictPolicy = builder.enumType('IngestConflictPolicy', {
  description: 'What to do with a sample whose timestamp is already stored.',
  values: {
    SKIP: { value: 'skip', description: 'Keep the stored sample; the new one counts as a duplicate.' },
    UPDATE: {
      value: 'update',
      description: 'Replace the stored values. Within one call, the last sample for a timestamp wins.',
    },
  } as const,
});

const MetricInput = builder.inputType('MetricInput', {
  description: 'One sample to store.',
  fields: (t) => ({
    timestamp: t.field({
      type: 'DateTime',
      required: true,
      description:
        'When the sample was taken: the natural key, one sample per instant (millisecond precision).',
    }),
    cpuLoad: t.float({
      required: true,
      description: 'CPU load, finite and >= 0 (stored as a 32-bit float).',
    }),
    concurrency: t.int({ required: true, description: 'Concurrent tasks, >= 0.' }),
  }),
});

type Rejection = SamplesResult['rejected'][number];

const IngestRejectionRef = builder.objectRef<Rejection>('IngestRejection');
builder.objectType(IngestRejectionRef, {
  description: 'A sample that was not stored, and why.',
  fields: (t) => ({
    index: t.exposeInt('index', { description: 'Position of the sample in `samples`, from 0.' }),
    field: t.exposeString('field', { description: 'The offending field of MetricInput.' }),
    reason: t.exposeString('reason'),
  }),
});

const IngestResultRef = builder.objectRef<SamplesResult>('IngestResult');
builder.objectType(IngestResultRef, {
  description:
    'Counts for one ingestMetrics call. Every valid sample is one of inserted, updated or duplicates; ' +
    'the invalid ones are listed in rejected and the valid ones are stored regardless.',
  fields: (t) => ({
    inserted: t.exposeInt('inserted', { description: 'New samples stored.' }),
    updated: t.exposeInt('updated', {
      description: 'Stored samples whose values were replaced (onConflict: UPDATE and different values).',
    }),
    duplicates: t.exposeInt('duplicates', {
      description:
        'Valid samples not written: their timestamp was already stored (with UPDATE: with the same values), ' +
        'or it came more than once in this call (SKIP keeps the first, UPDATE the last).',
    }),
    rejected: t.field({ type: [IngestRejectionRef], resolve: (result) => result.rejected }),
  }),
});

/**
 * Hashing both sides first gives buffers of equal length, which timingSafeEqual requires, so
 * neither the token's content nor its length leaks through timing.
 */
function tokensMatch(given: string, expected: string): boolean {
  const digest = (value: string) => createHash('sha256').update(value).digest();
  return timingSafeEqual(digest(given), digest(expected));
}

function authorize(request: Request, token: string | undefined): void {
  if (!token) {
    throw userError(
      'INGEST_DISABLED',
      'Ingest over GraphQL is disabled on this server: set INGEST_TOKEN (at least 16 characters) to enable it.',
    );
  }
  const header = request.headers.get('authorization');
  if (!header)
    throw userError('UNAUTHENTICATED', 'Writing requires the header "Authorization: Bearer <token>".');
  const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header);
  if (!match || !tokensMatch(match[1] as string, token)) {
    throw userError('UNAUTHENTICATED', 'The bearer token is not valid for writing.');
  }
}

builder.mutationField('ingestMetrics', (t) =>
  t.field({
    type: IngestResultRef,
    description:
      'Stores samples (at most INGEST_MAX_SAMPLES, 10,000 by default, per call) with the same validation as ' +
      '`npm run ingest`. Invalid samples are reported in `rejected`; the valid ones are stored, all in one ' +
      'transaction. Requires `Authorization: Bearer <INGEST_TOKEN>`.',
    args: {
      samples: t.arg({ type: [MetricInput], required: true }),
      onConflict: t.arg({ type: IngestConflictPolicy, required: true, defaultValue: 'skip' }),
    },
    resolve: async (_root, { samples, onConflict }, { prisma, config, request }) => {
      authorize(request, config.ingest.token);
      const max = config.ingest.maxSamplesPerRequest;
      if (samples.length > max) {
        throw badUserInput(
          'samples',
          `at most ${max} samples per call, got ${samples.length}; split the list`,
        );
      }
      return ingestSamples(prisma, samples, { onConflict, batchSize: config.ingest.batchSize });
    },
  }),
);
