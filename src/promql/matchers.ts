import { PromQLError } from './errors.js';

export type MatchOperator = '=' | '!=' | '=~' | '!~';

export interface Matcher {
  /** May be `__name__`. */
  name: string;
  operator: MatchOperator;
  value: string;
}

export type ValueTest = (value: string) => boolean;

/** RE2 flag groups JS has no inline form for; only a leading one can become a RegExp flag. */
const LEADING_FLAGS = /^\(\?([ims]+)\)/;

/**
 * Prometheus anchors matcher regexes at both ends (`^(?:re)$`). JS RegExp accepts the RE2 syntax
 * metric queries use; a leading `(?i)` (common in Grafana variables) becomes the `i` flag.
 */
export function compileRegex(source: string): RegExp {
  const flags = LEADING_FLAGS.exec(source);
  const body = flags ? source.slice(flags[0].length) : source;
  try {
    return new RegExp(`^(?:${body})$`, flags?.[1] ?? '');
  } catch (error) {
    throw new PromQLError('bad_data', `error parsing regexp: ${(error as Error).message}`);
  }
}

export function valueTest(matcher: Matcher): ValueTest {
  switch (matcher.operator) {
    case '=':
      return (value) => value === matcher.value;
    case '!=':
      return (value) => value !== matcher.value;
    case '=~': {
      const regex = compileRegex(matcher.value);
      return (value) => regex.test(value);
    }
    case '!~': {
      const regex = compileRegex(matcher.value);
      return (value) => !regex.test(value);
    }
  }
}

/**
 * Whether a series' labels satisfy every matcher; an absent label has the value "" (so
 * `{tier=""}` selects series without `tier`), as in Prometheus. For SeriesReader implementations.
 */
export function seriesFilter(
  matchers: readonly Matcher[],
): (labels: Readonly<Record<string, string>>) => boolean {
  const tests = matchers.map((matcher) => ({ name: matcher.name, test: valueTest(matcher) }));
  return (labels) => tests.every(({ name, test }) => test(labels[name] ?? ''));
}
