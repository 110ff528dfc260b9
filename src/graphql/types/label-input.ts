import { MAX_LABEL_NAME_LENGTH, MAX_LABEL_VALUE_LENGTH } from '../../domain/source.js';
import { builder } from '../builder.js';

export const LabelInput = builder.inputType('LabelInput', {
  description: 'One label of a source, as a writer gives it.',
  fields: (t) => ({
    name: t.string({
      required: true,
      description:
        `The label's name, e.g. "region" or "k8s.namespace": a letter or _, then letters, digits, _ . - / ` +
        `(at most ${MAX_LABEL_NAME_LENGTH} characters; names starting __, and "source", are reserved).`,
    }),
    value: t.string({
      required: true,
      description: `The value (at most ${MAX_LABEL_VALUE_LENGTH} characters).`,
    }),
  }),
});
