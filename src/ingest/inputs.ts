import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { pipeline, Readable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import { createGunzip } from 'node:zlib';
import { type Reader, readCsv, readJsonArray, readNdjson } from './readers.js';

export const FORMATS = ['json', 'ndjson', 'csv'] as const;
export type Format = (typeof FORMATS)[number];

/** One input: a file path, or an already open stream (standard input) with a display name. */
export interface Input {
  /** How problems name this input, e.g. the path or `<stdin>`. */
  name: string;
  path?: string;
  stream?: AsyncIterable<Buffer | string>;
}

export const READERS: Record<Format, Reader> = { json: readJsonArray, ndjson: readNdjson, csv: readCsv };

/** Large reads: fewer, bigger chunks are cheaper to split and parse. */
const READ_CHUNK_BYTES = 64 * 1024;

/** The format an extension names (ignoring a trailing `.gz`), if any. */
export function formatFromName(name: string): Format | undefined {
  const base = name.toLowerCase().replace(/\.gz$/, '');
  if (base.endsWith('.json')) return 'json';
  if (base.endsWith('.ndjson') || base.endsWith('.jsonl')) return 'ndjson';
  if (base.endsWith('.csv')) return 'csv';
  return undefined;
}

/**
 * The extension decides, except that a `.json` file whose content starts with `{` is read as
 * NDJSON: many tools name their JSON-lines output `.json`, and a JSON array cannot start with `{`.
 * Without a telling extension, the first non-blank character decides.
 */
export function detectFormat(name: string, firstChar: string | undefined): Format {
  const byName = formatFromName(name);
  if (byName === 'json' && firstChar === '{') return 'ndjson';
  if (byName) return byName;
  if (firstChar === '[') return 'json';
  if (firstChar === '{') return 'ndjson';
  return 'csv';
}

/** Reads ahead until `enough` says so; `rest` then yields the read-ahead items and everything after. */
async function peek<T>(
  source: AsyncIterable<T>,
  enough: (head: T[]) => boolean,
): Promise<{ head: T[]; rest: AsyncGenerator<T> }> {
  const iterator = source[Symbol.asyncIterator]();
  const head: T[] = [];
  let done = false;
  while (!enough(head)) {
    const next = await iterator.next();
    if (next.done) {
      done = true;
      break;
    }
    head.push(next.value);
  }
  async function* rest(): AsyncGenerator<T> {
    try {
      yield* head;
      if (done) return;
      while (true) {
        const next = await iterator.next();
        if (next.done) return;
        yield next.value;
      }
    } finally {
      // Stopping early (a fatal problem, a failed write) must still close the file.
      if (!done) await iterator.return?.();
    }
  }
  return { head, rest: rest() };
}

function byteLength(chunks: Buffer[]): number {
  let total = 0;
  for (const chunk of chunks) total += chunk.length;
  return total;
}

async function* asBuffers(source: AsyncIterable<Buffer | string>, onBytes?: (bytes: number) => void) {
  for await (const chunk of source) {
    const buffer = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    onBytes?.(buffer.length);
    yield buffer;
  }
}

/** Gzip is recognised by its magic bytes, so `.gz` files and gzipped standard input both work. */
async function decompressed(raw: AsyncIterable<Buffer>): Promise<AsyncIterable<Buffer>> {
  const { head, rest } = await peek(raw, (chunks) => byteLength(chunks) >= 2);
  const start = Buffer.concat(head);
  if (start[0] !== 0x1f || start[1] !== 0x8b) return rest;
  const gunzip = createGunzip({ chunkSize: READ_CHUNK_BYTES });
  // Errors (a truncated or corrupt file) destroy the gunzip stream, so they surface where it is read.
  pipeline(Readable.from(rest), gunzip, () => {});
  return gunzip;
}

async function* decoded(buffers: AsyncIterable<Buffer>): AsyncGenerator<string> {
  const decoder = new StringDecoder('utf8');
  let first = true;
  for await (const buffer of buffers) {
    let text = decoder.write(buffer);
    // A byte-order mark (Excel's CSV, some Windows tools) is not part of the first record.
    if (first && text !== '') {
      first = false;
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    }
    if (text !== '') yield text;
  }
  const tail = decoder.end();
  if (tail !== '') yield tail;
}

export interface OpenedInput {
  format: Format;
  text: AsyncGenerator<string>;
  /** Size on disk, when the input is a regular file: the progress bar's total. */
  totalBytes: number | undefined;
}

/**
 * Opens an input as decoded text and works out its format. `onBytes` counts bytes as read from
 * the file (compressed bytes for gzip), to match `totalBytes`.
 */
export async function openInput(
  input: Input,
  options: { format?: Format; onBytes?: (bytes: number) => void } = {},
): Promise<OpenedInput> {
  let raw: AsyncIterable<Buffer | string>;
  let totalBytes: number | undefined;
  if (input.path !== undefined) {
    const info = await stat(input.path);
    totalBytes = info.isFile() ? info.size : undefined;
    raw = createReadStream(input.path, { highWaterMark: READ_CHUNK_BYTES });
  } else if (input.stream) {
    raw = input.stream;
  } else {
    throw new Error(`input ${input.name} has neither a path nor a stream`);
  }
  const text = decoded(await decompressed(asBuffers(raw, options.onBytes)));
  const { head, rest } = await peek(text, (chunks) => /[^\s\uFEFF]/.test(chunks[chunks.length - 1] ?? ''));
  const firstChar = /[^\s\uFEFF]/.exec(head.join(''))?.[0];
  return { format: options.format ?? detectFormat(input.name, firstChar), text: rest, totalBytes };
}
