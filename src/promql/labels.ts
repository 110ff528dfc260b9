/** A label set whose keys are in ascending order, as Prometheus keeps them; includes `__name__` when present. */
export type Labels = Readonly<Record<string, string>>;

export const METRIC_NAME = '__name__';

/** Prometheus compares label strings as UTF-8 bytes, which orders like code points (not UTF-16 units). */
function compareStrings(a: string, b: string): number {
  if (a === b) return 0;
  const length = Math.min(a.length, b.length);
  for (let i = 0; i < length; i++) {
    const x = a.codePointAt(i) ?? 0;
    const y = b.codePointAt(i) ?? 0;
    if (x !== y) return x < y ? -1 : 1;
    if (x > 0xffff) i++;
  }
  return a.length - b.length;
}

/** Labels with sorted keys; label values that are empty mean "absent" in Prometheus and are dropped. */
export function toLabels(record: Readonly<Record<string, string>>): Labels {
  const sorted: Record<string, string> = {};
  for (const name of Object.keys(record).sort(compareStrings)) {
    const value = record[name];
    if (value !== undefined && value !== '') sorted[name] = value;
  }
  return sorted;
}

/** A string identifying the label set, for grouping and duplicate detection. */
export function labelsKey(labels: Labels): string {
  return JSON.stringify(Object.entries(labels));
}

/** Prometheus' labels.Compare: pairwise by name then value, then the shorter set first. */
export function compareLabels(a: Labels, b: Labels): number {
  const left = Object.entries(a);
  const right = Object.entries(b);
  const length = Math.min(left.length, right.length);
  for (let i = 0; i < length; i++) {
    const [leftName, leftValue] = left[i] as [string, string];
    const [rightName, rightValue] = right[i] as [string, string];
    const byName = compareStrings(leftName, rightName);
    if (byName !== 0) return byName;
    const byValue = compareStrings(leftValue, rightValue);
    if (byValue !== 0) return byValue;
  }
  return left.length - right.length;
}

export function dropMetricName(labels: Labels): Labels {
  if (!(METRIC_NAME in labels)) return labels;
  const { [METRIC_NAME]: _name, ...rest } = labels;
  return rest;
}

/** Only the named labels (those present). */
export function keepLabels(labels: Labels, names: readonly string[]): Labels {
  const kept: Record<string, string> = {};
  for (const [name, value] of Object.entries(labels)) if (names.includes(name)) kept[name] = value;
  return kept;
}

/** All but the named labels. */
export function removeLabels(labels: Labels, names: readonly string[]): Labels {
  const kept: Record<string, string> = {};
  for (const [name, value] of Object.entries(labels)) if (!names.includes(name)) kept[name] = value;
  return kept;
}
