import { checkSourceFilter, type LabelMatchOperator, type SourceFilter } from '../../domain/source.js';
import type { SourceSelection } from '../../store/source-filter.js';
import { builder, type Context } from '../builder.js';
import { badUserInput } from '../errors.js';

export const LabelMatchOperatorEnum = builder.enumType('LabelMatchOperator', {
  description: "How a label matcher compares a source's label with its value, as Prometheus' selectors do.",
  values: {
    EQUAL: { value: '=', description: 'The label equals the value (`=`).' },
    NOT_EQUAL: { value: '!=', description: 'The label differs from the value (`!=`).' },
    MATCHES: {
      value: '=~',
      description: 'The whole label matches the regular expression (`=~`, PostgreSQL syntax).',
    },
    NOT_MATCHES: {
      value: '!~',
      description: 'The whole label does not match the regular expression (`!~`).',
    },
  } as const satisfies Record<string, { value: LabelMatchOperator; description: string }>,
});

export const LabelMatcherInput = builder.inputType('LabelMatcher', {
  description: 'A condition on one label of a source; a source without the label has it as the empty string.',
  fields: (t) => ({
    name: t.string({ required: true, description: 'The label, e.g. "region" or "k8s.namespace".' }),
    value: t.string({
      required: true,
      description: 'The value, or a regular expression for MATCHES and NOT_MATCHES.',
    }),
    operator: t.field({
      type: LabelMatchOperatorEnum,
      required: true,
      defaultValue: '=',
      description: 'How to compare; EQUAL by default.',
    }),
  }),
});

/**
 * The arguments that narrow a question to some sources: one, several, or those whose labels
 * match. Given together, a source must satisfy each. Without any, the question covers every
 * source, as before sources existed.
 */
export const sourceFilterArguments = builder.args((t) => ({
  source: t.string({ description: 'Only the samples of the source of this name.' }),
  sources: t.stringList({ description: 'Only the samples of the sources of these names (at most 100).' }),
  labels: t.field({
    type: [LabelMatcherInput],
    description: 'Only the samples of sources whose labels match every matcher (at most 16).',
  }),
}));

/** The values of sourceFilterArguments. */
interface SourceFilterArguments {
  source?: string | null | undefined;
  sources?: readonly string[] | null | undefined;
  labels?: readonly { name: string; value: string; operator: LabelMatchOperator }[] | null | undefined;
}

/** The filter the arguments ask for, or undefined for every source; refuses what is out of bounds. */
export function sourceFilterOf(args: SourceFilterArguments): SourceFilter | undefined {
  const names =
    args.source != null && args.sources != null
      ? args.sources.filter((name) => name === args.source)
      : args.source != null
        ? [args.source]
        : (args.sources ?? undefined);
  const labels = args.labels ?? undefined;
  if (names === undefined && labels === undefined) return undefined;
  const filter: SourceFilter = {
    ...(names !== undefined && { names }),
    ...(labels !== undefined && { labels }),
  };
  const problem = checkSourceFilter(filter);
  if (problem) throw badUserInput(problem.argument, problem.problem);
  return filter;
}

/**
 * The sources the arguments select, resolved once for the question (one statement on `sources`;
 * none without a filter). A regular expression PostgreSQL cannot compile is BAD_USER_INPUT naming
 * `labels` (InvalidSourceFilterError, coded by plugins/error-codes.ts).
 */
export function selectedSources(
  args: SourceFilterArguments,
  { store, scope }: Pick<Context, 'store' | 'scope'>,
): Promise<SourceSelection> {
  return store.selectSources(sourceFilterOf(args), scope);
}
