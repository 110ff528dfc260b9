import type { OperationScope } from '../observability/operation-scope.js';
import {
  Batch,
  type BatchResult,
  type BatchSource,
  DEFAULT_SOURCE_ROW,
  isMissingConcurrency,
  isMissingLoad,
  type RefusedRow,
} from './sample-batch.js';

/**
 * How long after a source last gave one value a row of it holding only the other is held for its
 * other half: a source that reports one value alone (node_exporter and no application) never waits.
 */
const PARTNER_SEEN_MS = 10 * 60_000;

/** The sources whose values are remembered; past it the first remembered is forgotten. */
const MAX_REMEMBERED_SOURCES = 100_000;

/**
 * Held rows are written when no merging write has come or been stored for this long: senders that
 * each wait for an answer before sending again can wait on each other's held rows in a circle
 * (shard A's rows wait for shard B's next request, B's for A's), which only a quiet ends early.
 */
const QUIET_MS = 20;

/** How often a source's place in the memory of sources is renewed. */
const TOUCH_MS = 60_000;

/** What a source's rows last gave of one value: when (the clock's time), and up to which instant. */
interface Given {
  at: number;
  untilMs: number;
}

/** What a source's rows gave, as remembered. */
interface SourceGiven {
  load: Given;
  concurrency: Given;
  /** The labels its newest row that gave any gave: a held row's older labels never replace them. */
  labels: BatchSource['labels'];
  /** When it was last moved to the end of the memory (which forgets from the front). */
  touched: number;
}

/** A merging write: its rows held for their other halves, and the writes that carry its rows. */
interface Call {
  /** Its rows still held. */
  held: Set<HeldRow>;
  /** The writes that carry its rows, each settled once its rows are stored or have failed. */
  carriers: Promise<void>[];
  refused: RefusedRow[];
  /** Called when its last held row is taken into another call's write, once it waits for that. */
  allTaken: () => void;
  /** Whether it waits for its held rows (its own rows all looked at). */
  waiting: boolean;
}

/** A row holding one value, held for the other from another write. */
interface HeldRow {
  call: Call;
  origin: number;
  timestampMs: number;
  load: number;
  concurrency: number;
  source: BatchSource | undefined;
}

/** A row to write, and the call it answers to. */
interface Joined {
  row: Omit<HeldRow, 'call'>;
  call: Call;
}

type WriteMerged = (batch: Batch, scope: OperationScope | undefined) => Promise<BatchResult>;

/**
 * Joins the halves of samples that agents send apart. A source's CPU load and concurrency of one
 * instant are two series to Prometheus, and its remote-write spreads series over concurrent
 * requests (shards): written as they come, one request inserts the row and another updates it,
 * and an update costs PostgreSQL a new row version, its index entries and an exact recount of the
 * key's rollups (bench/results/2026-12-08-agents-joined.md). So a merging write's rows holding one
 * value of the two are held, for at most `windowMs`, for the other half from another write, and
 * the two are written as one row in the write that brings the second: the first write is
 * answered once that one is stored, so nothing is acknowledged before it is stored. Rows of a key
 * that is held are written after the held row, as they came: the later value wins, as it would
 * have without holding.
 */
export class HalfRowJoin {
  /** The rows held, by source name (the default source: '') and timestamp. */
  readonly #held = new Map<string, Map<number, HeldRow>>();
  /** Per source name (the default source: ''), what its rows gave of each value. */
  readonly #given = new Map<string, SourceGiven>();

  /** The writes of merged rows not stored yet. */
  #writing = 0;
  #quiet: NodeJS.Timeout | undefined;

  constructor(
    private readonly windowMs: number,
    private readonly writeMerged: WriteMerged,
  ) {}

  /** Merges `batch` into the stored rows, as `writeMerged` does, its half rows joined where they can be. */
  async write(batch: Batch, scope: OperationScope | undefined): Promise<BatchResult> {
    let allTaken = () => {};
    const taken = new Promise<void>((resolve) => {
      allTaken = resolve;
    });
    const call: Call = { held: new Set(), carriers: [], refused: [], allTaken, waiting: false };
    const now = Date.now();
    /** The rows to write now, in order: this call's, and the held rows they take. */
    const joined: Joined[] = [];
    const carried = new Set<Call>();
    const take = (held: HeldRow) => {
      this.#release(held);
      carried.add(held.call);
      joined.push({ row: held, call: held.call });
    };
    const given = valuesGiven(batch);
    for (let i = 0; i < batch.length; i++) {
      const index = batch.sourceIndexes[i] as number;
      const source = index === DEFAULT_SOURCE_ROW ? undefined : batch.sources[index];
      const row = {
        origin: batch.origins[i] as number,
        timestampMs: batch.timestamps[i] as number,
        load: batch.loads[i] as number,
        concurrency: batch.concurrencies[i] as number,
        source,
      };
      const name = source?.name ?? '';
      const givesLoad = !isMissingLoad(row.load);
      const givesConcurrency = !isMissingConcurrency(row.concurrency);
      const other = this.#noteGiven(name, row.timestampMs, givesLoad, givesConcurrency, source?.labels, now);
      const held = this.#held.get(name)?.get(row.timestampMs);
      if (held) take(held);
      // A source whose other value this write gives too has it coming from this sender, whose next
      // write waits for this one's answer: held, the row would wait for the window to end.
      const otherHere = givesLoad ? given.concurrencyUntil[index + 1] : given.loadUntil[index + 1];
      if (
        !held &&
        givesLoad !== givesConcurrency &&
        Number.isNaN(otherHere) &&
        awaited(other, row.timestampMs, now)
      ) {
        this.#hold(name, { ...row, call });
        continue;
      }
      joined.push({ row, call });
    }
    // A series comes in time order: a held row lacking a value that this write gives its source at a
    // later instant will not meet its other half any more. Once a write, not at each row: a push
    // of a backlog of one series against as many held rows would otherwise cost their product.
    this.#takePassed('', given, 0, take);
    for (const [index, source] of batch.sources.entries())
      this.#takePassed(source.name, given, index + 1, take);
    if (call.held.size === 0 && carried.size === 0) return this.#writeMerged(batch, scope);
    if (joined.length > 0) {
      const written = this.#writeJoined(joined, scope);
      call.carriers.push(written);
      for (const other of carried) other.carriers.push(written);
    } else {
      // Holding only: a quiet from now writes what is held.
      this.#stirred();
    }
    call.waiting = true;
    if (call.held.size > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        taken,
        new Promise<void>((resolve) => (timer = setTimeout(resolve, this.windowMs))),
      ]);
      clearTimeout(timer);
      if (call.held.size > 0) call.carriers.push(this.#writeHeld(call, scope));
    }
    // Nothing of this call is held now: no write is added to its carriers after this. Every write
    // carrying its rows settles before it is answered, so a retry never races one of them.
    const settled = await Promise.allSettled(call.carriers);
    const failed = settled.find((result) => result.status === 'rejected');
    if (failed) throw failed.reason;
    call.refused.sort((a, b) => a.origin - b.origin);
    return {
      inserted: batch.length - call.refused.length,
      updated: 0,
      duplicates: 0,
      ids: [],
      refused: call.refused,
    };
  }

  /**
   * Takes the held rows of source `name` that the batch's rows of that source (at `at` in `given`)
   * have passed: those lacking a value it gives at a later instant.
   */
  #takePassed(name: string, given: ValuesGiven, at: number, take: (held: HeldRow) => void): void {
    const heldOfSource = this.#held.get(name);
    if (!heldOfSource) return;
    // NaN (the batch gives the value no instant of the source) compares false.
    const loadUntil = given.loadUntil[at] as number;
    const concurrencyUntil = given.concurrencyUntil[at] as number;
    for (const held of heldOfSource.values())
      if (
        (isMissingLoad(held.load) && held.timestampMs < loadUntil) ||
        (isMissingConcurrency(held.concurrency) && held.timestampMs < concurrencyUntil)
      )
        take(held);
  }

  /** Holds `row`, of the source `name`, for its other half. */
  #hold(name: string, row: HeldRow): void {
    let heldOfSource = this.#held.get(name);
    if (!heldOfSource) {
      heldOfSource = new Map();
      this.#held.set(name, heldOfSource);
    }
    heldOfSource.set(row.timestampMs, row);
    row.call.held.add(row);
  }

  /** Ends the holding of `row`, which its caller writes. */
  #release(row: HeldRow): void {
    const name = row.source?.name ?? '';
    const heldOfSource = this.#held.get(name) as Map<number, HeldRow>;
    heldOfSource.delete(row.timestampMs);
    if (heldOfSource.size === 0) this.#held.delete(name);
    row.call.held.delete(row);
    if (row.call.held.size === 0 && row.call.waiting) row.call.allTaken();
  }

  /** Writes the rows of `call` still held, alone. */
  #writeHeld(call: Call, scope: OperationScope | undefined): Promise<void> {
    const rows: Joined[] = [];
    for (const held of [...call.held]) {
      this.#release(held);
      rows.push({ row: held, call });
    }
    return this.#writeJoined(rows, scope);
  }

  /** Writes merged rows, counted while they are written. */
  async #writeMerged(rows: Batch, scope: OperationScope | undefined): Promise<BatchResult> {
    this.#writing++;
    this.#stirred();
    try {
      return await this.writeMerged(rows, scope);
    } finally {
      this.#writing--;
      this.#stirred();
    }
  }

  /** A write came or was stored: the quiet, when every held row is written, starts again. */
  #stirred(): void {
    clearTimeout(this.#quiet);
    this.#quiet = undefined;
    if (this.#held.size === 0 || this.#writing > 0) return;
    this.#quiet = setTimeout(() => {
      this.#quiet = undefined;
      const calls = new Set<Call>();
      for (const heldOfSource of this.#held.values())
        for (const row of heldOfSource.values()) calls.add(row.call);
      for (const call of calls) call.carriers.push(this.#writeHeld(call, undefined));
    }, QUIET_MS);
  }

  /** Writes joined rows; each refused row goes to the call it came from. */
  #writeJoined(joined: readonly Joined[], scope: OperationScope | undefined): Promise<void> {
    const rows = new Batch(joined.length);
    for (const { row } of joined) {
      const { source } = row;
      // A held row's labels are older than those its source gave since: they go in only if newest.
      const labels =
        source && this.#given.get(source.name)?.labels === source.labels ? source.labels : undefined;
      rows.push(
        row.timestampMs,
        isMissingLoad(row.load) ? null : row.load,
        isMissingConcurrency(row.concurrency) ? null : row.concurrency,
        source === undefined ? DEFAULT_SOURCE_ROW : rows.source(source.name, labels),
      );
    }
    const written = this.#writeMerged(rows, scope).then(({ refused }) => {
      for (const { origin, problem } of refused) {
        const { row, call } = joined[origin] as Joined;
        call.refused.push({ origin: row.origin, problem });
      }
    });
    // Awaited by its calls once their windows end; a failure before then is not unhandled.
    written.catch(() => {});
    return written;
  }

  /** Notes what a row of source `name` at `timestampMs` gives; returns what it gave of the value this row lacks. */
  #noteGiven(
    name: string,
    timestampMs: number,
    givesLoad: boolean,
    givesConcurrency: boolean,
    labels: BatchSource['labels'],
    now: number,
  ): Given {
    let given = this.#given.get(name);
    if (!given) {
      if (this.#given.size >= MAX_REMEMBERED_SOURCES)
        this.#given.delete(this.#given.keys().next().value as string);
      given = {
        load: { at: Number.NEGATIVE_INFINITY, untilMs: Number.NEGATIVE_INFINITY },
        concurrency: { at: Number.NEGATIVE_INFINITY, untilMs: Number.NEGATIVE_INFINITY },
        labels: undefined,
        touched: now,
      };
      this.#given.set(name, given);
    } else if (now - given.touched > TOUCH_MS) {
      // Moved to the end now and then: the memory forgets the sources seen longest ago first.
      this.#given.delete(name);
      this.#given.set(name, given);
      given.touched = now;
    }
    if (givesLoad) noteValue(given.load, timestampMs, now);
    if (givesConcurrency) noteValue(given.concurrency, timestampMs, now);
    if (labels !== undefined) given.labels = labels;
    return givesLoad ? given.concurrency : given.load;
  }
}

function noteValue(value: Given, timestampMs: number, now: number): void {
  value.at = now;
  if (timestampMs > value.untilMs) value.untilMs = timestampMs;
}

/** Per source of a batch (at its index + 1; 0: the default source), the latest instant it gives each value at; NaN: none. */
interface ValuesGiven {
  loadUntil: Float64Array;
  concurrencyUntil: Float64Array;
}

function valuesGiven(batch: Batch): ValuesGiven {
  const loadUntil = new Float64Array(batch.sources.length + 1).fill(Number.NaN);
  const concurrencyUntil = new Float64Array(batch.sources.length + 1).fill(Number.NaN);
  for (let i = 0; i < batch.length; i++) {
    const at = (batch.sourceIndexes[i] as number) + 1;
    const timestampMs = batch.timestamps[i] as number;
    // NaN compares false: the first instant replaces it.
    if (!isMissingLoad(batch.loads[i] as number) && !(timestampMs <= (loadUntil[at] as number)))
      loadUntil[at] = timestampMs;
    if (
      !isMissingConcurrency(batch.concurrencies[i] as number) &&
      !(timestampMs <= (concurrencyUntil[at] as number))
    )
      concurrencyUntil[at] = timestampMs;
  }
  return { loadUntil, concurrencyUntil };
}

/**
 * Whether a row at `timestampMs` lacking a value its source gives (`other`) is worth holding: the
 * source gave it lately, and not yet at this instant or later (had it, the other half is stored or
 * held already: a sender whose halves come one after the other never waits).
 */
function awaited(other: Given, timestampMs: number, now: number): boolean {
  return now - other.at <= PARTNER_SEEN_MS && other.untilMs < timestampMs;
}
