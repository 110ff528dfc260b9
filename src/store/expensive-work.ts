/**
 * Runs work that reads much of the database in one of the slots for expensive work, which keep
 * the pool's other connections for pages, writes and live reads. http/expensive-work-slots.ts
 * gives every request one, shared fairly between clients; the GraphQL resolvers run their
 * uncached summaries and series, totalCount and nodes in it (graphql/expensive-work.ts).
 */
export type ExpensiveWork = <T>(work: () => Promise<T>) => Promise<T>;
