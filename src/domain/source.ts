/**
 * The vocabulary and rules of a source: the host, pod or service instance a sample belongs to. A
 * source has a name (its identity) and labels that describe it, bounded so that one writer cannot
 * grow every later read: Prometheus and OpenTelemetry bound theirs likewise.
 */

export const MAX_SOURCE_NAME_LENGTH = 256;
export const MAX_SOURCE_LABELS = 32;
export const MAX_LABEL_NAME_LENGTH = 128;
export const MAX_LABEL_VALUE_LENGTH = 1024;

/**
 * A label name: OpenTelemetry's attribute keys (`k8s.pod.name`) as well as Prometheus' label names
 * (`instance`). Names starting `__` are reserved, as in Prometheus, and `source` is the source's
 * own name wherever labels and the source are shown together.
 */
const LABEL_NAME = /^[A-Za-z_][A-Za-z0-9_.\-/]*$/;
export const RESERVED_LABEL_NAMES: ReadonlySet<string> = new Set(['source']);

/** A source's labels: label name to value. */
export type SourceLabels = Readonly<Record<string, string>>;

/** How a label matcher compares, as Prometheus' selectors do: equal, not equal, regex, not regex. */
export type LabelMatchOperator = '=' | '!=' | '=~' | '!~';

export interface LabelMatcher {
  name: string;
  operator: LabelMatchOperator;
  value: string;
}

/**
 * Which sources a question covers: all (no filter), those named, those whose labels match every
 * matcher, or both at once. A missing label matches as the empty string, and a regular expression
 * (PostgreSQL's, which for Prometheus' usual patterns reads as RE2 does) matches the whole value,
 * as in Prometheus. The store evaluates it, in SQL: a question holds the ids of the sources it
 * selects (four bytes each), never their names or labels.
 */
export interface SourceFilter {
  names?: readonly string[];
  labels?: readonly LabelMatcher[];
}

/** A source as stored. */
export interface StoredSource {
  id: number;
  name: string;
  labels: SourceLabels;
  firstSeen: Date | null;
  lastSeen: Date | null;
}

/** PostgreSQL's text and jsonb cannot hold the NUL character: a value holding one never reaches it. */
const NUL = '\u0000';

/** Why a prefix to search names by is refused, or null: longer than a name can be, or holding NUL. */
export function checkSourceNamePrefix(prefix: string): string | null {
  if (prefix.length > MAX_SOURCE_NAME_LENGTH) return `must be at most ${MAX_SOURCE_NAME_LENGTH} characters`;
  if (prefix.includes(NUL)) return 'must not hold the NUL character';
  return null;
}

/** Why a source name is refused, or null. */
export function checkSourceName(name: string): string | null {
  if (name.length === 0) return 'must not be empty';
  if (name.length > MAX_SOURCE_NAME_LENGTH)
    return `must be at most ${MAX_SOURCE_NAME_LENGTH} characters, got ${name.length}`;
  if (name.trim() !== name) return 'must not start or end with white space';
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is refused
  if (/[\u0000-\u001f\u007f]/.test(name)) return 'must not hold control characters';
  return null;
}

/** Why a label name is refused, or null. */
export function checkLabelName(name: string): string | null {
  if (name.length === 0) return 'a label name must not be empty';
  if (name.length > MAX_LABEL_NAME_LENGTH)
    return `label name must be at most ${MAX_LABEL_NAME_LENGTH} characters, got ${name.length}`;
  if (!LABEL_NAME.test(name))
    return `label name "${name.slice(0, 40)}" must start with a letter or _ and hold only letters, digits, _ . - /`;
  if (name.startsWith('__') || RESERVED_LABEL_NAMES.has(name)) return `label name "${name}" is reserved`;
  return null;
}

/** Why a set of labels is refused, or null: too many, or a name or value out of bounds. */
export function checkLabels(labels: SourceLabels): string | null {
  if (!Object.isFrozen(labels)) return labelsProblem(labels);
  const known = checkedLabels.get(labels);
  if (known !== undefined) return known;
  const problem = labelsProblem(labels);
  checkedLabels.set(labels, problem);
  return problem;
}

/**
 * Frozen label sets already checked, and what was found: an agent's push gives every sample of a
 * source the same frozen label set (one object), checked once instead of at each sample. A set not
 * frozen (a record's own, from a file or the mutation) is checked each time, and costs no entry.
 */
const checkedLabels = new WeakMap<SourceLabels, string | null>();

function labelsProblem(labels: SourceLabels): string | null {
  const entries = Object.entries(labels);
  if (entries.length > MAX_SOURCE_LABELS) return `at most ${MAX_SOURCE_LABELS} labels, got ${entries.length}`;
  for (const [name, value] of entries) {
    const problem = checkLabelName(name);
    if (problem) return problem;
    if (typeof value !== 'string') return `label "${name}" must be a string`;
    if (value.length > MAX_LABEL_VALUE_LENGTH)
      return `label "${name}" must be at most ${MAX_LABEL_VALUE_LENGTH} characters, got ${value.length}`;
    if (value.includes(NUL)) return `label "${name}" must not hold the NUL character`;
  }
  return null;
}

/** Labels from `name=value` texts (the CLI's --label), or the first problem. */
export function labelsFromPairs(pairs: readonly string[]): { labels: SourceLabels } | { problem: string } {
  const labels: Record<string, string> = {};
  for (const pair of pairs) {
    const at = pair.indexOf('=');
    if (at <= 0) return { problem: `"${pair.slice(0, 40)}" is not name=value` };
    const name = pair.slice(0, at);
    if (Object.hasOwn(labels, name)) return { problem: `label "${name.slice(0, 40)}" given twice` };
    labels[name] = pair.slice(at + 1);
  }
  const problem = checkLabels(labels);
  return problem ? { problem } : { labels };
}

/** Names one source filter may list, and label matchers it may hold: each is a condition to evaluate. */
export const MAX_FILTER_SOURCES = 100;
export const MAX_FILTER_LABELS = 16;
/**
 * The longest regular expression a matcher may hold. With backreferences refused, PostgreSQL's
 * engine (Spencer's, as Tcl's) matches in time bounded by the pattern's size and the value's, and
 * a value is at most MAX_LABEL_VALUE_LENGTH: a bounded pattern is a bounded cost per source.
 */
export const MAX_LABEL_REGEX_LENGTH = 256;
/** A backreference (`\1` to `\9`): the one construct that makes matching exponential. */
const BACKREFERENCE = /\\[1-9]/;

/**
 * A source filter the database refused to evaluate (a regular expression PostgreSQL cannot
 * compile): the client's mistake, answered as BAD_USER_INPUT (GraphQL) or 400 (REST), naming the
 * argument.
 */
export class InvalidSourceFilterError extends Error {
  override name = 'InvalidSourceFilterError';

  constructor(
    readonly argument: string,
    /** Why, without the argument's name (a REST parameter names it its own way). */
    readonly reason: string,
  ) {
    super(`${argument}: ${reason}`);
  }
}

/** Why a filter is refused before it reaches the database (sizes, label names), or null. */
export function checkSourceFilter(filter: SourceFilter): { argument: string; problem: string } | null {
  const names = filter.names ?? [];
  if (names.length > MAX_FILTER_SOURCES)
    return { argument: 'sources', problem: `at most ${MAX_FILTER_SOURCES} sources, got ${names.length}` };
  const labels = filter.labels ?? [];
  if (labels.length > MAX_FILTER_LABELS)
    return {
      argument: 'labels',
      problem: `at most ${MAX_FILTER_LABELS} label matchers, got ${labels.length}`,
    };
  if (names.some((name) => name.includes(NUL)))
    return { argument: 'sources', problem: 'a source name must not hold the NUL character' };
  for (const { name, operator, value } of labels) {
    if (name.length === 0 || name.length > MAX_LABEL_NAME_LENGTH)
      return { argument: 'labels', problem: `a label name must be 1 to ${MAX_LABEL_NAME_LENGTH} characters` };
    if (value.length > MAX_LABEL_VALUE_LENGTH)
      return {
        argument: 'labels',
        problem: `a label value must be at most ${MAX_LABEL_VALUE_LENGTH} characters`,
      };
    if (name.includes(NUL) || value.includes(NUL))
      return { argument: 'labels', problem: 'a label matcher must not hold the NUL character' };
    if (operator === '=~' || operator === '!~') {
      if (value.length > MAX_LABEL_REGEX_LENGTH)
        return {
          argument: 'labels',
          problem: `a regular expression must be at most ${MAX_LABEL_REGEX_LENGTH} characters`,
        };
      if (BACKREFERENCE.test(value))
        return {
          argument: 'labels',
          problem: 'a regular expression must not hold backreferences (\\1 to \\9)',
        };
    }
  }
  return null;
}
