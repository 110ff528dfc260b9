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
 */
export function useSharedEvents(): Plugin {
  const questions = new WeakMap<DocumentNode, Map<string, Question | null>>();
  const results = new WeakMap<object, Map<string, MaybePromise<ExecutionResult>>>();
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

  function shared(payload: unknown, args: ExecutionArgs, key: string): MaybePromise<ExecutionResult> {
    if (typeof payload !== 'object' || payload === null) return execute({ ...args, rootValue: payload });
    let byQuestion = results.get(payload);
    if (!byQuestion) {
      byQuestion = new Map();
      results.set(payload, byQuestion);
    }
    let result = byQuestion.get(key);
    if (result === undefined) {
      // As graphql-js maps a source event to its response: the event is the root value.
      result = execute({ ...args, rootValue: payload });
      byQuestion.set(key, result);
    }
    return result;
  }

  return {
    onSubscribe({ args, setSubscribeFn }) {
      const question = questionOf(args);
      if (!question) return;
      setSubscribeFn(async (subscribeArgs) => {
        const source = await createSourceEventStream(subscribeArgs);
        if (!isAsyncIterable(source)) return source;
        const key = question.keyFor(subscribeArgs.variableValues ?? {});
        return new SharedResults(source[Symbol.asyncIterator](), (payload) =>
          shared(payload, subscribeArgs, key),
        );
      });
    },
  };
}

const DONE: IteratorReturnResult<undefined> = { done: true, value: undefined };

/**
 * A subscriber's results, one per source event: a single `then` per event. promise-helpers'
 * mapAsyncIterator, general over maybe-promises at every step, was about a tenth of the CPU per
 * event with an event per sample (bench/PROFILE.md, "Live delivery").
 */
class SharedResults implements AsyncIterableIterator<ExecutionResult> {
  readonly #source: AsyncIterator<unknown>;
  readonly #resultOf: (payload: unknown) => MaybePromise<ExecutionResult>;

  constructor(source: AsyncIterator<unknown>, resultOf: (payload: unknown) => MaybePromise<ExecutionResult>) {
    this.#source = source;
    this.#resultOf = resultOf;
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  next(): Promise<IteratorResult<ExecutionResult>> {
    return this.#source.next().then(this.#map);
  }

  async return(): Promise<IteratorResult<ExecutionResult>> {
    await this.#source.return?.();
    return DONE;
  }

  async throw(error: unknown): Promise<IteratorResult<ExecutionResult>> {
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
