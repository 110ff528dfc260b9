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

/** What a source's rows last gave of one value: when (the clock's time), and up to which instant. */
interface Given {
  at: number;
  untilMs: number;
}

/** A merging write: its rows held for their other halves, and the writes that carry its rows. */
interface Call {
  /** Its rows still held. */
  held: Set<HeldRow>;
  /** The writes that carry its rows, each settled once its rows are stored or have failed. */
  carriers: Promise<void>[];
  refused: RefusedRow[];
  /** Called when its last held row is taken into another call's write. */
  allTaken: () => void;
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

/** Where a row of a joined batch came from: the call it answers to and its origin there. */
interface Owner {
  call: Call;
  origin: number;
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
  readonly #given = new Map<string, { load: Given; concurrency: Given }>();

  /** The rows in #held. */
  #heldCount = 0;
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
    const call: Call = { held: new Set(), carriers: [], refused: [], allTaken };
    const now = Date.now();
    // Its rows, and the held rows they take: those held now, and those it holds itself.
    const joined = new Batch(Math.max(1, 2 * batch.length + this.#heldCount));
    const owners: Owner[] = [];
    const carried = new Set<Call>();
    const given = valuesGiven(batch);
    const take = (held: HeldRow) => {
      this.#release(held);
      carried.add(held.call);
      addRow(joined, owners, held, held.call);
    };
    for (let i = 0; i < batch.length; i++) {
      const index = batch.sourceIndexes[i] as number;
      const source = index === DEFAULT_SOURCE_ROW ? undefined : batch.sources[index];
      const timestampMs = batch.timestamps[i] as number;
      const load = batch.loads[i] as number;
      const concurrency = batch.concurrencies[i] as number;
      const name = source?.name ?? '';
      const givesLoad = !isMissingLoad(load);
      const givesConcurrency = !isMissingConcurrency(concurrency);
      const other = this.#noteGiven(name, timestampMs, givesLoad, givesConcurrency, now);
      const heldOfSource = this.#held.get(name);
      const held = heldOfSource?.get(timestampMs);
      if (held) take(held);
      // A series comes in time order: a held row of an earlier instant lacking a value this row
      // gives will not meet its other half any more.
      for (const earlier of heldOfSource?.values() ?? [])
        if (
          earlier.timestampMs < timestampMs &&
          ((givesLoad && isMissingLoad(earlier.load)) ||
            (givesConcurrency && isMissingConcurrency(earlier.concurrency)))
        )
          take(earlier);
      // A source whose other value this write gives too has it coming from this sender, whose next
      // write waits for this one's answer: held, the row would wait for the window to end.
      const givenHere = given[index + 1] as number;
      const otherHere = givesLoad ? givenHere & GIVES_CONCURRENCY : givenHere & GIVES_LOAD;
      if (!held && givesLoad !== givesConcurrency && !otherHere && awaited(other, timestampMs, now)) {
        this.#hold(name, {
          call,
          origin: batch.origins[i] as number,
          timestampMs,
          load,
          concurrency,
          source,
        });
        continue;
      }
      addRow(
        joined,
        owners,
        { origin: batch.origins[i] as number, timestampMs, load, concurrency, source },
        call,
      );
    }
    if (call.held.size === 0 && carried.size === 0) return this.#writeMerged(batch, scope);
    if (joined.length > 0) {
      const written = this.#writeJoined(joined, owners, scope);
      call.carriers.push(written);
      for (const other of carried) other.carriers.push(written);
    } else {
      // Holding only: a quiet from now writes what is held.
      this.#stirred();
    }
    if (call.held.size > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        taken,
        new Promise<void>((resolve) => (timer = setTimeout(resolve, this.windowMs))),
      ]);
      clearTimeout(timer);
      if (call.held.size > 0) call.carriers.push(this.#writeHeld(call, scope));
    }
    // Nothing of this call is held now: no write is added to its carriers after this.
    await Promise.all(call.carriers);
    call.refused.sort((a, b) => a.origin - b.origin);
    return {
      inserted: batch.length - call.refused.length,
      updated: 0,
      duplicates: 0,
      ids: [],
      refused: call.refused,
    };
  }

  /** Holds `row`, of the source `name`, for its other half. */
  #hold(name: string, row: HeldRow): void {
    let heldOfSource = this.#held.get(name);
    if (!heldOfSource) {
      heldOfSource = new Map();
      this.#held.set(name, heldOfSource);
    }
    heldOfSource.set(row.timestampMs, row);
    this.#heldCount++;
    row.call.held.add(row);
  }

  /** Ends the holding of `row`, which its caller writes. */
  #release(row: HeldRow): void {
    const name = row.source?.name ?? '';
    const heldOfSource = this.#held.get(name) as Map<number, HeldRow>;
    heldOfSource.delete(row.timestampMs);
    this.#heldCount--;
    if (heldOfSource.size === 0) this.#held.delete(name);
    row.call.held.delete(row);
    if (row.call.held.size === 0) row.call.allTaken();
  }

  /** Writes the rows of `call` still held, alone. */
  #writeHeld(call: Call, scope: OperationScope | undefined): Promise<void> {
    const rows = new Batch(call.held.size);
    const owners: Owner[] = [];
    for (const held of [...call.held]) {
      this.#release(held);
      addRow(rows, owners, held, call);
    }
    return this.#writeJoined(rows, owners, scope);
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
  #writeJoined(rows: Batch, owners: readonly Owner[], scope: OperationScope | undefined): Promise<void> {
    const written = this.#writeMerged(rows, scope).then(({ refused }) => {
      for (const { origin, problem } of refused) {
        const owner = owners[origin] as Owner;
        owner.call.refused.push({ origin: owner.origin, problem });
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
    now: number,
  ): Given {
    let given = this.#given.get(name);
    if (!given) {
      if (this.#given.size >= MAX_REMEMBERED_SOURCES)
        this.#given.delete(this.#given.keys().next().value as string);
      given = {
        load: { at: Number.NEGATIVE_INFINITY, untilMs: Number.NEGATIVE_INFINITY },
        concurrency: { at: Number.NEGATIVE_INFINITY, untilMs: Number.NEGATIVE_INFINITY },
      };
      this.#given.set(name, given);
    }
    if (givesLoad) noteValue(given.load, timestampMs, now);
    if (givesConcurrency) noteValue(given.concurrency, timestampMs, now);
    return givesLoad ? given.concurrency : given.load;
  }
}

function noteValue(value: Given, timestampMs: number, now: number): void {
  value.at = now;
  if (timestampMs > value.untilMs) value.untilMs = timestampMs;
}

const GIVES_LOAD = 1;
const GIVES_CONCURRENCY = 2;

/** The values each of a batch's sources (at its index + 1; 0: the default source) is given by its rows. */
function valuesGiven(batch: Batch): Uint8Array {
  const given = new Uint8Array(batch.sources.length + 1);
  for (let i = 0; i < batch.length; i++) {
    const at = (batch.sourceIndexes[i] as number) + 1;
    if (!isMissingLoad(batch.loads[i] as number)) given[at] = (given[at] as number) | GIVES_LOAD;
    if (!isMissingConcurrency(batch.concurrencies[i] as number))
      given[at] = (given[at] as number) | GIVES_CONCURRENCY;
  }
  return given;
}

/**
 * Whether a row at `timestampMs` lacking a value its source gives (`other`) is worth holding: the
 * source gave it lately, and not yet at this instant or later (had it, the other half is stored or
 * held already: a sender whose halves come one after the other never waits).
 */
function awaited(other: Given, timestampMs: number, now: number): boolean {
  return now - other.at <= PARTNER_SEEN_MS && other.untilMs < timestampMs;
}

/** Adds a row to a batch being joined, its origin there being its place, owned by `call`. */
function addRow(rows: Batch, owners: Owner[], row: Omit<HeldRow, 'call'>, call: Call): void {
  const source =
    row.source === undefined ? DEFAULT_SOURCE_ROW : rows.source(row.source.name, row.source.labels);
  owners.push({ call, origin: row.origin });
  rows.push(
    row.timestampMs,
    isMissingLoad(row.load) ? null : row.load,
    isMissingConcurrency(row.concurrency) ? null : row.concurrency,
    source,
  );
}
