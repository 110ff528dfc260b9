import { builder } from '../builder.js';

export const SortOrder = builder.enumType('SortOrder', {
  description: 'Order of rows by timestamp.',
  values: {
    ASC: { value: 'asc', description: 'Oldest first.' },
    DESC: { value: 'desc', description: 'Newest first.' },
  } as const,
});
