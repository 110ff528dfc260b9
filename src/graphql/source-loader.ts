import type { StoredSource } from '../domain/source.js';
import type { Context } from './builder.js';

interface Waiting {
  resolve(source: StoredSource): void;
  reject(error: unknown): void;
}

/**
 * The sources of a request's samples, loaded in batches: every `source` asked for while a list of
 * samples completes is read by one statement (a page of 100 samples, one read of `sources`), never
 * one per sample. Nothing is kept after a batch is answered, so a long subscription holds no
 * sources and sees a source's labels as they are when its samples arrive.
 */
class SourceLoader {
  #waiting: Map<number, Waiting[]> | undefined;

  constructor(private readonly context: Pick<Context, 'store' | 'scope'>) {}

  load(id: number): Promise<StoredSource> {
    if (!this.#waiting) {
      this.#waiting = new Map();
      // After the promises already settled have run their reactions, as DataLoader waits: a list's
      // items all ask before the batch is read.
      void Promise.resolve().then(() => process.nextTick(() => void this.#dispatch()));
    }
    const waiting = this.#waiting;
    return new Promise((resolve, reject) => {
      const forId = waiting.get(id);
      if (forId) forId.push({ resolve, reject });
      else waiting.set(id, [{ resolve, reject }]);
    });
  }

  async #dispatch(): Promise<void> {
    const waiting = this.#waiting;
    this.#waiting = undefined;
    if (!waiting) return;
    try {
      const { store, scope } = this.context;
      const found = await store.sourcesByIds([...waiting.keys()], scope);
      // A live event's sample is read on the primary, and its source may be too new for the
      // standby reads go to: what the standby lacks is read on the primary.
      const missing = [...waiting.keys()].filter((id) => !found.has(id));
      if (missing.length > 0 && store.primary !== store) {
        for (const [id, source] of await store.primary.sourcesByIds(missing, scope)) found.set(id, source);
      }
      for (const [id, each] of waiting) {
        const source = found.get(id);
        // metrics.source_id has no foreign key: only a row written around the store lacks its source.
        const outcome = source
          ? undefined
          : new Error(`a stored sample names source ${id}, which does not exist`);
        for (const { resolve, reject } of each) {
          if (source) resolve(source);
          else reject(outcome);
        }
      }
    } catch (error) {
      for (const each of waiting.values()) for (const { reject } of each) reject(error);
    }
  }
}

const loaders = new WeakMap<object, SourceLoader>();

/** The source with this id, read in one batch with the others this request asks for at once. */
export function loadSource(context: Pick<Context, 'store' | 'scope'>, id: number): Promise<StoredSource> {
  let loader = loaders.get(context);
  if (!loader) {
    loader = new SourceLoader(context);
    loaders.set(context, loader);
  }
  return loader.load(id);
}
