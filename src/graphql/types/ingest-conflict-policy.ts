import { builder } from '../builder.js';

export const IngestConflictPolicy = builder.enumType('IngestConflictPolicy', {
  description: 'What to do with a sample whose source and timestamp are already stored.',
  values: {
    SKIP: { value: 'skip', description: 'Keep the stored sample; the new one counts as a duplicate.' },
    UPDATE: {
      value: 'update',
      description:
        'Replace the stored sample (a value the new one lacks is then missing). Within one call, the last ' +
        'sample for a source and timestamp wins.',
    },
  } as const,
});
