import { ingestSamples } from '../../ingest/samples.js';
import { authorizeWrite } from '../authorization.js';
import { builder } from '../builder.js';
import { badUserInput } from '../errors.js';
import { IngestConflictPolicy } from './ingest-conflict-policy.js';
import { IngestResult } from './ingest-result.js';
import { MetricInput } from './metric-input.js';

builder.mutationField('ingestMetrics', (t) =>
  t.field({
    type: IngestResult,
    description:
      'Stores samples of one or more sources (at most INGEST_MAX_SAMPLES, 10,000 by default, per call) with ' +
      'the same validation as ' +
      '`npm run ingest`, timestamps more than MAX_FUTURE (1 day by default) ahead of now included. Invalid ' +
      'samples are reported in `rejected`; the valid ones are stored, all in one ' +
      'transaction. Requires `Authorization: Bearer <INGEST_TOKEN>`.',
    args: {
      samples: t.arg({ type: [MetricInput], required: true }),
      onConflict: t.arg({ type: IngestConflictPolicy, required: true, defaultValue: 'skip' }),
    },
    resolve: async (_root, { samples, onConflict }, { store, config, request, serviceMetrics, scope }) => {
      authorizeWrite(request, config.ingest.token);
      const max = config.ingest.maxSamplesPerRequest;
      if (samples.length > max) {
        throw badUserInput(
          'samples',
          `at most ${max} samples per call, got ${samples.length}; split the list`,
        );
      }
      const result = await ingestSamples(store, samples, {
        onConflict,
        batchSize: config.ingest.batchSize,
        maxFutureSeconds: config.ingest.maxFutureSeconds,
        scope,
      });
      serviceMetrics.ingested({ ...result, rejected: result.rejected.length });
      return result;
    },
  }),
);
