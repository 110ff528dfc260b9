import type { SourceFilter } from '../domain/source.js';
import { isFiltered } from '../store/source-filter.js';

/**
 * One text for every filter that selects the same sources, whatever the order or repetition of its
 * names and matchers; undefined for every source. Live streams and questions of one key share
 * their sorting of the change feed's rows and their computations.
 */
export function sourceFilterKey(filter: SourceFilter | undefined): string | undefined {
  if (!isFiltered(filter)) return undefined;
  // Without names, any name; with an empty list, none: the two stay apart.
  const names = filter.names === undefined ? null : [...new Set(filter.names)].sort();
  const matchers = [
    ...new Set(
      (filter.labels ?? []).map(({ name, operator, value }) => JSON.stringify([name, operator, value])),
    ),
  ].sort();
  return JSON.stringify([names, matchers]);
}
