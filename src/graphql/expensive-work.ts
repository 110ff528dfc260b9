import type { ExpensiveWork } from '../store/expensive-work.js';
import type { MetricStore } from '../store/metric-store.js';

/** The part of a context this needs; http/expensive-work-slots.ts gives every request its `expensive`. */
interface WithExpensiveWork {
  expensive?: ExpensiveWork | undefined;
}

/**
 * Runs `work`, which reads much of the database, in one of the client's slots: a client sending
 * many such requests at once waits on its own slots while other clients keep the pool.
 */
export function expensive<T>(context: WithExpensiveWork, work: () => Promise<T>): Promise<T> {
  if (!context.expensive) throw new Error('useExpensiveWorkSlots is not among the Yoga plugins');
  return context.expensive(work);
}

/**
 * `store` for the aggregate cache, computing a summary or series (of all its sources, or by source) in one of the client's slots:
 * the cache calls these on a miss only, so remembered answers never wait.
 */
export function expensiveAggregates(
  context: WithExpensiveWork,
  store: MetricStore,
): Pick<MetricStore, 'revision' | 'summary' | 'series' | 'sourceSummaries' | 'sourceSeries'> {
  return {
    revision: (scope) => store.revision(scope),
    summary: (range, sources, scope) => expensive(context, () => store.summary(range, sources, scope)),
    series: (range, bucketSeconds, sources, scope) =>
      expensive(context, () => store.series(range, bucketSeconds, sources, scope)),
    sourceSummaries: (range, sources, ranking, scope) =>
      expensive(context, () => store.sourceSummaries(range, sources, ranking, scope)),
    sourceSeries: (range, bucketSeconds, sources, ranking, scope) =>
      expensive(context, () => store.sourceSeries(range, bucketSeconds, sources, ranking, scope)),
  };
}
