import type { SampleRejection } from '../../ingest/samples.js';
import { builder } from '../builder.js';

export const IngestRejection = builder.objectRef<SampleRejection>('IngestRejection').implement({
  description: 'A sample that was not stored, and why.',
  fields: (t) => ({
    index: t.exposeInt('index', { description: 'Position of the sample in `samples`, from 0.' }),
    field: t.exposeString('field', { description: 'The offending field of MetricInput.' }),
    reason: t.exposeString('reason'),
    code: t.string({
      nullable: true,
      description:
        'Set when the sample itself was valid but could not be stored: SOURCE_LIMIT_EXCEEDED, its source is new ' +
        'and MAX_SOURCES sources exist. Null for a mistake in the sample.',
      resolve: (rejection) => rejection.code ?? null,
    }),
  }),
});
