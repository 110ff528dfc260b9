import type { SamplesResult } from '../../ingest/samples.js';
import { builder } from '../builder.js';

import { IngestRejection } from './ingest-rejection.js';

export const IngestResult = builder.objectRef<SamplesResult>('IngestResult').implement({
  description:
    'Counts for one ingestMetrics call. Every valid sample is one of inserted, updated or duplicates; ' +
    'the invalid ones, and those of a new source past MAX_SOURCES, are listed in rejected, and the others ' +
    'are stored regardless.',
  fields: (t) => ({
    inserted: t.exposeInt('inserted', { description: 'New samples stored.' }),
    updated: t.exposeInt('updated', {
      description: 'Stored samples whose values were replaced (onConflict: UPDATE and different values).',
    }),
    duplicates: t.exposeInt('duplicates', {
      description:
        'Valid samples not written: their source and timestamp were already stored (with UPDATE: with the same ' +
        'values), or came more than once in this call (SKIP keeps the first, UPDATE the last).',
    }),
    rejected: t.field({ type: [IngestRejection], resolve: (result) => result.rejected }),
  }),
});
