/**
 * Limits on what clients can make the service write about them. Operation names, paths, SQL built
 * from a request, error messages that quote input: each is the client's to make as large or as
 * varied as it likes, and each ends up in a metric label, a span attribute or a log line. A metric
 * label that takes any value makes every scrape grow with every new value (a series is never
 * forgotten); a log line or span that carries a megabyte of input costs that megabyte in every
 * pipeline it passes through.
 */

/** The longest label value kept: an operation name is an identifier, rarely longer than a sentence. */
const MAX_LABEL_LENGTH = 64;
/** The label value that stands for every value past a label's distinct values. */
const OTHER_LABEL = '(other)';
/** The longest string a log line or a span attribute keeps. */
export const MAX_TEXT_LENGTH = 2048;
/** The most items of a list a log line keeps. */
export const MAX_LIST_ITEMS = 20;
/** The deepest nesting of objects and lists a log line keeps (a query plan is some ten levels deep). */
const MAX_DEPTH = 16;

/** `text`, or its first `max` characters and a marker that says how much was cut. */
export function boundedText(text: string, max = MAX_TEXT_LENGTH): string {
  return text.length <= max ? text : `${text.slice(0, max)}…[${text.length - max} more characters]`;
}

/** `value` with every string, list and nesting in it bounded, each cut marked: for log lines. */
export function boundedValue(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return boundedText(value);
  if (typeof value !== 'object' || value === null || value instanceof Date) return value;
  if (depth >= MAX_DEPTH) return '…[nested too deep]';
  if (Array.isArray(value)) {
    const kept = value.slice(0, MAX_LIST_ITEMS).map((item) => boundedValue(item, depth + 1));
    return value.length > MAX_LIST_ITEMS ? [...kept, `…[${value.length - MAX_LIST_ITEMS} more items]`] : kept;
  }
  if (value instanceof Error) return value;
  const bounded: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) bounded[key] = boundedValue(item, depth + 1);
  return bounded;
}

/** `value` cut to MAX_LABEL_LENGTH, marked when cut: for a label, or a span's name. */
export function shortLabel(value: string): string {
  return value.length > MAX_LABEL_LENGTH ? `${value.slice(0, MAX_LABEL_LENGTH)}…` : value;
}

/**
 * The values one metric label has taken: the first `maxValues` distinct ones (each cut to
 * MAX_LABEL_LENGTH) are kept, every later one is `(other)`, so a label never has more than
 * `maxValues + 1` values whatever clients send.
 */
export class LabelValues {
  readonly #seen = new Set<string>();

  constructor(private readonly maxValues: number) {}

  bounded(value: string): string {
    const label = shortLabel(value);
    if (this.#seen.has(label)) return label;
    if (this.#seen.size >= this.maxValues) return OTHER_LABEL;
    this.#seen.add(label);
    return label;
  }
}
