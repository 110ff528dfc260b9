import { MAX_SOURCE_LABELS, MAX_SOURCE_NAME_LENGTH } from '../../domain/source.js';
import { builder } from '../builder.js';
import { LabelInput } from './label-input.js';

export const MetricInput = builder.inputType('MetricInput', {
  description: 'One sample to store: a CPU load, a concurrency or both (at least one).',
  fields: (t) => ({
    timestamp: t.field({
      type: 'DateTime',
      required: true,
      description:
        'When the sample was taken: with the source, the natural key, one sample per source and instant ' +
        '(millisecond precision). At most MAX_FUTURE (1 day by default) ahead of now.',
    }),
    cpuLoad: t.float({ description: 'CPU load, finite and >= 0 (stored as a 32-bit float).' }),
    concurrency: t.int({ description: 'Concurrent tasks, >= 0.' }),
    source: t.string({
      description:
        `The name of the host, pod or service instance the sample belongs to (at most ${MAX_SOURCE_NAME_LENGTH} ` +
        'characters), made by the first sample that names it; without it, the default source (DEFAULT_SOURCE). ' +
        'A new source past MAX_SOURCES is refused: the sample is listed in `rejected` with the code SOURCE_LIMIT_EXCEEDED.',
    }),
    labels: t.field({
      type: [LabelInput],
      description:
        `The labels of the sample's source (at most ${MAX_SOURCE_LABELS}, each name once): given, they replace ` +
        "the source's labels; left out, the source keeps its own. Only with `source`.",
    }),
  }),
});
