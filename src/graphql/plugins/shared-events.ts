import {
  type ASTNode,
  createSourceEventStream,
  type DocumentNode,
  type ExecutionArgs,
  type ExecutionResult,
  execute,
  type FieldNode,
  getOperationAST,
  Kind,
  visit,
} from 'graphql';
import { isAsyncIterable, type Plugin } from 'graphql-yoga';

/**
 * The field extension that marks a subscription whose events are the same for every subscriber:
 * what its resolver and its event type's resolvers return depends on the event and the selection
 * alone, never on the field's arguments or the context (who asks, their request). Its events are
 * then executed once per distinct selection, however many subscribers receive them.
 */
export const SHARED_EVENTS = 'sharedEvents';

type MaybePromise<T> = T | Promise<T>;

/**
 * The results of consecutive events of one subscriber's stream, handed on in one iterator step:
 * one step per subscriber per feed read instead of per event. Only a consumer that asked for them
 * (SharedEventsOptions.batchReaders) gets these, and it sends each result as its own event.
 *
 * A batch passes envelop's per-result hooks (onNext) unseen, as a value without `errors`: its
 * results were already made what those hooks would make them (SharedEventsOptions.finish).
 */
export class ResultBatch {
  readonly results: readonly ExecutionResult[];

  constructor(results: readonly ExecutionResult[]) {
    this.results = results;
  }
}

/** A source stream that can hand over several events in one step (live/live-samples.ts' RowBatches). */
interface EventBatches {
  /** The events next() would give next, at least one, in order. */
  nextBatch(): Promise<IteratorResult<readonly unknown[]>>;
}

export interface SharedEventsOptions {
  /**
   * What the app's per-result hooks make of an event's result (error codes, masking), applied once
   * per shared result, so that batches, which skip those hooks, carry the same results.
   */
  finish(result: ExecutionResult): ExecutionResult;
  /**
   * Requests whose subscription stream is read by a consumer of ResultBatch values (the coalescing
   * SSE processor adds its requests once it takes their stream, before it reads it). Others get
   * one result per step, as graphql-js gives them.
   */
  batchReaders: WeakSet<Request>;
}

/**
 * Subscriptions whose field carries SHARED_EVENTS: the field's `subscribe` runs per subscriber as
 * usual (its arguments checked, its stream opened), but an event is executed once per distinct
 * (document, operation, variables used by the selection) and that result is handed to every
 * subscriber of the same question, instead of once per subscriber. With 1,000 subscribers to one
 * stream that was most of the server's work per event (bench/PROFILE.md, "Live delivery").
 *
 * An event is shared by identity: the live sources hand the same object (a sample, a batch, a
 * live series) to all their subscribers, and the results are kept in a WeakMap keyed by it, so
 * they live exactly as long as the event does. Variables used only in the root field's arguments
 * (a resume cursor, a start time) shape the stream, not its events, and do not split the sharing.
 *
 * A source that can hand over several events at once (a sample stream's feed read) gives a reader
 * of batches a ResultBatch per step, the same object for every subscriber handed the same events:
 * with an event per sample, the per-step work of each iterator between the source and the socket
 * is then paid per write to the table, not per sample.
 */
export function useSharedEvents({ finish, batchReaders }: SharedEventsOptions): Plugin {
  const questions = new WeakMap<DocumentNode, Map<string, Question | null>>();
  const results = new WeakMap<object, Map<string, MaybePromise<ExecutionResult>>>();
  const batches = new WeakMap<readonly unknown[], Map<string, MaybePromise<ResultBatch>>>();
  let documents = 0;

  /** How this document's operation shares its events, or null when its field does not. */
  function questionOf(args: ExecutionArgs): Question | null {
    let byOperation = questions.get(args.document);
    if (!byOperation) {
      byOperation = new Map();
      questions.set(args.document, byOperation);
    }
    const operationName = args.operationName ?? '';
    let question = byOperation.get(operationName);
    if (question === undefined) {
      question = sharedQuestion(args, ++documents);
      byOperation.set(operationName, question);
    }
    return question;
  }

  function executed(payload: unknown, args: ExecutionArgs): MaybePromise<ExecutionResult> {
    // As graphql-js maps a source event to its response: the event is the root value.
    const result = execute({ ...args, rootValue: payload });
    return result instanceof Promise ? result.then(finish) : finish(result);
  }

  function shared(payload: unknown, args: ExecutionArgs, key: string): MaybePromise<ExecutionResult> {
    if (typeof payload !== 'object' || payload === null) return executed(payload, args);
    let byQuestion = results.get(payload);
    if (!byQuestion) {
      byQuestion = new Map();
      results.set(payload, byQuestion);
    }
    let result = byQuestion.get(key);
    if (result === undefined) {
      result = executed(payload, args);
      byQuestion.set(key, result);
    }
    return result;
  }

  /** The batch of results of these events, the same object for every subscriber handed the same array. */
  function sharedBatch(
    payloads: readonly unknown[],
    args: ExecutionArgs,
    key: string,
  ): MaybePromise<ResultBatch> {
    let byQuestion = batches.get(payloads);
    if (!byQuestion) {
      byQuestion = new Map();
      batches.set(payloads, byQuestion);
    }
    let batch = byQuestion.get(key);
    if (batch === undefined) {
      const each = payloads.map((payload) => shared(payload, args, key));
      batch = each.some((result) => result instanceof Promise)
        ? Promise.all(each).then((done) => new ResultBatch(done))
        : new ResultBatch(each as ExecutionResult[]);
      byQuestion.set(key, batch);
    }
    return batch;
  }

  return {
    onSubscribe({ args, setSubscribeFn }) {
      const question = questionOf(args);
      if (!question) return;
      setSubscribeFn(async (subscribeArgs) => {
        const source = await createSourceEventStream(subscribeArgs);
        if (!isAsyncIterable(source)) return source;
        const key = question.keyFor(subscribeArgs.variableValues ?? {});
        const iterator = source[Symbol.asyncIterator]();
        const request = (subscribeArgs.contextValue as { request?: Request }).request;
        const batched =
          request && hasBatches(iterator)
            ? {
                source: iterator,
                wanted: () => batchReaders.has(request),
                resultOf: (payloads: readonly unknown[]) => sharedBatch(payloads, subscribeArgs, key),
              }
            : undefined;
        // A ResultBatch is a step's value only for a reader that asked for them (see ResultBatch).
        return new SharedResults(
          iterator,
          (payload) => shared(payload, subscribeArgs, key),
          batched,
        ) as AsyncIterableIterator<ExecutionResult>;
      });
    },
  };
}

function hasBatches(iterator: AsyncIterator<unknown>): iterator is AsyncIterator<unknown> & EventBatches {
  return typeof (iterator as Partial<EventBatches>).nextBatch === 'function';
}

const DONE: IteratorReturnResult<undefined> = { done: true, value: undefined };

/** How a subscriber's stream hands over several events in one step, and whether its reader wants that now. */
interface Batched {
  source: EventBatches;
  wanted(): boolean;
  resultOf(payloads: readonly unknown[]): MaybePromise<ResultBatch>;
}

/**
 * A subscriber's results: one per source event, a single `then` per event (promise-helpers'
 * mapAsyncIterator, general over maybe-promises at every step, was about a tenth of the CPU per
 * event with an event per sample; bench/PROFILE.md, "Live delivery"), or, for a reader of batches
 * and a source that has them, a ResultBatch per step.
 */
class SharedResults implements AsyncIterableIterator<ExecutionResult | ResultBatch> {
  readonly #source: AsyncIterator<unknown>;
  readonly #resultOf: (payload: unknown) => MaybePromise<ExecutionResult>;
  readonly #batched: Batched | undefined;

  constructor(
    source: AsyncIterator<unknown>,
    resultOf: (payload: unknown) => MaybePromise<ExecutionResult>,
    batched: Batched | undefined,
  ) {
    this.#source = source;
    this.#resultOf = resultOf;
    this.#batched = batched;
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  next(): Promise<IteratorResult<ExecutionResult | ResultBatch>> {
    if (this.#batched?.wanted()) return this.#batched.source.nextBatch().then(this.#mapBatch);
    return this.#source.next().then(this.#map);
  }

  async return(): Promise<IteratorResult<ExecutionResult>> {
    await this.#source.return?.();
    return DONE;
  }

  async throw(error: unknown): Promise<never> {
    await this.#source.return?.();
    throw error;
  }

  readonly #map = (step: IteratorResult<unknown>): MaybePromise<IteratorResult<ExecutionResult>> => {
    if (step.done) return DONE;
    let result: MaybePromise<ExecutionResult>;
    try {
      result = this.#resultOf(step.value);
    } catch (error) {
      // The stream cannot go on: let its source go before the error reaches the subscriber.
      return this.throw(error);
    }
    return result instanceof Promise
      ? result.then((value) => ({ done: false, value }))
      : { done: false, value: result };
  };

  readonly #mapBatch = (
    step: IteratorResult<readonly unknown[]>,
  ): MaybePromise<IteratorResult<ResultBatch>> => {
    if (step.done || !this.#batched) return DONE;
    let batch: MaybePromise<ResultBatch>;
    try {
      batch = this.#batched.resultOf(step.value);
    } catch (error) {
      return this.throw(error);
    }
    return batch instanceof Promise
      ? batch.then((value) => ({ done: false, value }))
      : { done: false, value: batch };
  };
}

interface Question {
  /** The key of a subscriber's events: equal keys, equal results for the same event. */
  keyFor(variables: Readonly<Record<string, unknown>>): string;
}

/** The question a subscription operation of one shared-events field asks, or null. */
function sharedQuestion(args: ExecutionArgs, documentId: number): Question | null {
  const operation = getOperationAST(args.document, args.operationName);
  if (operation?.operation !== 'subscription') return null;
  // One field at the root, as the spec requires of subscriptions, written out (not in a fragment).
  const [root, ...others] = operation.selectionSet.selections;
  if (!root || others.length > 0 || root.kind !== Kind.FIELD) return null;
  const field = args.schema.getSubscriptionType()?.getFields()[root.name.value];
  if (field?.extensions[SHARED_EVENTS] !== true) return null;
  const used = variablesOfEvents(args.document, root);
  return {
    keyFor: (variables) =>
      `${documentId}:${JSON.stringify(used.map((name) => (name in variables ? [variables[name]] : [])))}`,
  };
}

/** Variables an event's execution can read: all but those used only in the root field's arguments. */
function variablesOfEvents(document: DocumentNode, root: FieldNode): string[] {
  const names = new Set<string>();
  const collect = (node: ASTNode) =>
    visit(node, {
      Variable: (variable) => {
        names.add(variable.name.value);
      },
    });
  if (root.selectionSet) collect(root.selectionSet);
  for (const directive of root.directives ?? []) collect(directive);
  for (const definition of document.definitions) {
    if (definition.kind === Kind.FRAGMENT_DEFINITION) collect(definition);
  }
  return [...names].sort();
}
