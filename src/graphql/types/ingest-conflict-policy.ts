import { builder } from '../builder.js';

export const IngestConflictPolicy = builder.enumType('IngestConflictPolicy', {
  description: 'What to do with a sample whose timestamp is already stored.',
  values: {
    SKIP: { value: 'skip', description: 'Keep the stored sample; the new one counts as a duplicate.' },
    UPDATE: {
      value: 'update',
      description: 'Replace the stored values. Within one call, the last sample for a timestamp wins.',
    },
  } as const,
});
