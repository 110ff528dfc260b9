import DataLoader from 'dataloader';
import type { StoredSource } from '../domain/source.js';
import type { Context } from './builder.js';

/**
 * The sources of a request's samples, loaded in batches: every `source` asked for while a list of
 * samples completes is read by one statement (a page of 100 samples, one read of `sources`), never
 * one per sample. Nothing is kept once a batch is answered (no cache), so a long subscription holds
 * no sources and sees a source's labels as they are when its samples arrive.
 */
function sourceLoader({ store, scope }: Pick<Context, 'store' | 'scope'>): DataLoader<number, StoredSource> {
  return new DataLoader(
    async (ids) => {
      const found = await store.sourcesByIds(ids, scope);
      // A live event's sample is read on the primary, and its source may be too new for the
      // standby reads go to: what the standby lacks is read on the primary.
      const missing = ids.filter((id) => !found.has(id));
      if (missing.length > 0 && store.primary !== store) {
        for (const [id, source] of await store.primary.sourcesByIds(missing, scope)) found.set(id, source);
      }
      // metrics.source_id has no foreign key: only a row written around the store lacks its source.
      return ids.map(
        (id) => found.get(id) ?? new Error(`a stored sample names source ${id}, which does not exist`),
      );
    },
    { cache: false },
  );
}

const loaders = new WeakMap<object, DataLoader<number, StoredSource>>();

/** The source with this id, read in one batch with the others this request asks for at once. */
export function loadSource(context: Pick<Context, 'store' | 'scope'>, id: number): Promise<StoredSource> {
  let loader = loaders.get(context);
  if (!loader) {
    loader = sourceLoader(context);
    loaders.set(context, loader);
  }
  return loader.load(id);
}
