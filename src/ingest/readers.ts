import { parse as parseCsvLine } from 'csv-parse/sync';
import type { Problem } from '../domain/sample.js';

/**
 * What a reader produces: a record with the line it starts on, or a problem at a line. `fatal`
 * marks a problem after which the reader could not go on (the rest of the input was not read).
 */
export type InputItem =
  | { line: number; record: Record<string, unknown>; problem?: undefined }
  | { line: number; problem: Problem; fatal?: boolean; record?: undefined };

/**
 * Readers yield their items a chunk at a time rather than one by one: an async generator step per
 * record costs more than parsing the record.
 */
export type Reader = (text: AsyncIterable<string>) => AsyncGenerator<InputItem[]>;

/** Records longer than this are refused without being buffered further, so memory stays bounded. */
export const MAX_RECORD_CHARS = 1 << 20;
const TOO_LONG: Problem = { field: 'record', reason: `longer than ${MAX_RECORD_CHARS} characters` };
/**
 * Brackets a JSON array's element may nest (the element itself is the first). A sample is one flat
 * object; the bound keeps the splitter's bracket stack small whatever the input (a file of
 * nothing but '[' once grew it to gigabytes).
 */
export const MAX_NESTING = 64;
const TOO_DEEP: Problem = { field: 'record', reason: `nested deeper than ${MAX_NESTING} levels` };

function malformed(kind: string, error: unknown): Problem {
  const message = error instanceof Error ? error.message : String(error);
  return {
    field: 'record',
    reason: `malformed ${kind}: ${message.length > 120 ? `${message.slice(0, 120)}...` : message}`,
  };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** One JSON text that must hold one record: an NDJSON line or a JSON array's element. */
function pushJsonRecord(out: InputItem[], line: number, text: string): void {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    out.push({ line, problem: malformed('JSON', error) });
    return;
  }
  if (isObject(value)) out.push({ line, record: value });
  else out.push({ line, problem: { field: 'record', reason: 'must be a JSON object' } });
}

/**
 * Splits text into physical lines (numbered from 1, `\r\n` or `\n`) and hands each to `onLine`.
 * A line is only held in memory up to MAX_RECORD_CHARS.
 */
async function* byLine(
  text: AsyncIterable<string>,
  onLine: (line: string, lineNumber: number, out: InputItem[]) => void,
): AsyncGenerator<InputItem[]> {
  let lineNumber = 0;
  let carry = '';
  let oversized = false;
  const finish = (piece: string, out: InputItem[]) => {
    lineNumber++;
    if (oversized) {
      out.push({ line: lineNumber, problem: TOO_LONG });
      oversized = false;
    } else {
      onLine(piece.endsWith('\r') ? piece.slice(0, -1) : piece, lineNumber, out);
    }
  };
  for await (const chunk of text) {
    const out: InputItem[] = [];
    let start = 0;
    let newline = chunk.indexOf('\n');
    while (newline !== -1) {
      const piece = chunk.slice(start, newline);
      finish(carry ? carry + piece : piece, out);
      carry = '';
      start = newline + 1;
      newline = chunk.indexOf('\n', start);
    }
    if (!oversized) {
      carry += chunk.slice(start);
      if (carry.length > MAX_RECORD_CHARS) {
        oversized = true;
        carry = '';
      }
    }
    if (out.length > 0) yield out;
  }
  if (oversized || carry !== '') {
    const out: InputItem[] = [];
    finish(carry, out);
    if (out.length > 0) yield out;
  }
}

/** NDJSON: one JSON object a line; blank lines are skipped. */
export const readNdjson: Reader = (text) =>
  byLine(text, (line, lineNumber, out) => {
    // A quick test before trim(): almost every line starts with '{'.
    if (line.charCodeAt(0) !== 123 && line.trim() === '') return;
    pushJsonRecord(out, lineNumber, line);
  });

/** csv-parse's messages name its options and a line of its own; these name the fix. */
const CSV_PROBLEMS: Record<string, Problem> = {
  CSV_INVALID_CLOSING_QUOTE: {
    field: 'record',
    reason: 'malformed CSV: a closing quote must be followed by a comma',
  },
  CSV_QUOTE_NOT_CLOSED: {
    field: 'record',
    reason: 'malformed CSV: quote not closed on this line (a field cannot span lines)',
  },
};

const CANONICAL_COLUMNS: Record<string, string> = {
  timestamp: 'timestamp',
  cpu_load: 'cpu_load',
  cpuload: 'cpuLoad',
  concurrency: 'concurrency',
  source: 'source',
  labels: 'labels',
};

/**
 * CSV with a header row. Lines are split here and each is parsed on its own, so that a broken line
 * (an unclosed quote, say) costs that line only: a streaming CSV parser stays inside the open quote
 * and silently swallows the records that follow. No valid field (a number, a timestamp, a source name) contains
 * a line break, so quoted fields spanning lines are not needed. Lines without quotes, nearly all
 * of them, skip the parser.
 */
export const readCsv: Reader = (text) => {
  let header: string[] | undefined;
  let headerProblem = false;
  return byLine(text, (rawLine, lineNumber, out) => {
    if (headerProblem) return;
    const line = lineNumber === 1 && rawLine.charCodeAt(0) === 0xfeff ? rawLine.slice(1) : rawLine;
    if (line.trim() === '') return;
    let fields: string[];
    if (line.includes('"')) {
      try {
        fields = (parseCsvLine(line, { relax_column_count: true, trim: true }) as string[][])[0] ?? [];
      } catch (error) {
        const code = (error as { code?: string }).code ?? '';
        out.push({ line: lineNumber, problem: CSV_PROBLEMS[code] ?? malformed('CSV', error) });
        return;
      }
    } else {
      fields = line.split(',');
      for (let i = 0; i < fields.length; i++) fields[i] = (fields[i] as string).trim();
    }
    if (header === undefined) {
      header = fields.map((name) => CANONICAL_COLUMNS[name.toLowerCase()] ?? name);
      // A sample needs a time and a value: a CPU load, a concurrency or both.
      const missing: string[] = header.includes('timestamp') ? [] : ['timestamp'];
      if (!header.some((name) => name === 'cpu_load' || name === 'cpuLoad' || name === 'concurrency'))
        missing.push('cpu_load or concurrency');
      if (missing.length > 0) {
        headerProblem = true;
        out.push({
          line: lineNumber,
          fatal: true,
          problem: {
            field: 'header',
            reason: `missing column${missing.length > 1 ? 's' : ''} ${missing.join(', ')} (found: ${fields.join(', ')}); the first line must name the columns`,
          },
        });
      }
      return;
    }
    if (fields.length !== header.length) {
      out.push({
        line: lineNumber,
        problem: {
          field: 'record',
          reason: `expected ${header.length} fields as in the header, got ${fields.length}`,
        },
      });
      return;
    }
    const record: Record<string, unknown> = {};
    for (let i = 0; i < header.length; i++) record[header[i] as string] = fields[i];
    out.push({ line: lineNumber, record });
  });
};

const Phase = { BeforeArray: 0, BeforeElement: 1, InElement: 2, AfterArray: 3, Stopped: 4 } as const;
type Phase = (typeof Phase)[keyof typeof Phase];

const OPEN_BRACE = 123;
const CLOSE_BRACE = 125;
const OPEN_BRACKET = 91;
const CLOSE_BRACKET = 93;
const COMMA = 44;
const QUOTE = 34;
const BACKSLASH = 92;
const NEWLINE = 10;

function isSpace(code: number): boolean {
  return code === 32 || code === 10 || code === 13 || code === 9 || code === 0xfeff;
}

/**
 * A JSON array of objects, streamed. A generic streaming JSON parser (stream-json and the like)
 * emits tokens but not the line each element starts on, and gives up at the first syntax error;
 * here the array is only split into its top-level elements (tracking strings, escapes and
 * brackets), each element goes to the native JSON.parse, and a malformed element is reported at
 * its own line while the elements after it still load. Only a broken structure (mismatched
 * brackets, a missing comma, an array never closed) stops the file.
 */
export const readJsonArray: Reader = async function* (text) {
  let phase: Phase = Phase.BeforeArray;
  let line = 1;
  let elementLine = 1;
  let carry = '';
  /** Why the element being read is refused (too long, too deep): it is then skipped, not kept. */
  let refused: Problem | undefined;
  let inString = false;
  let escaped = false;
  const brackets: number[] = [];
  /** Brackets opened past MAX_NESTING in a refused element, counted but not matched. */
  let excessDepth = 0;
  let afterComma = false;

  const stop = (out: InputItem[], at: number, reason: string): Phase => {
    out.push({ line: at, fatal: true, problem: { field: 'record', reason } });
    return Phase.Stopped;
  };

  const emit = (out: InputItem[], elementText: string) => {
    if (refused) {
      out.push({ line: elementLine, problem: refused });
      refused = undefined;
      return;
    }
    pushJsonRecord(out, elementLine, elementText);
  };

  for await (const chunk of text) {
    if (phase === Phase.Stopped) break;
    const out: InputItem[] = [];
    let elementStart = phase === Phase.InElement ? 0 : -1;
    const length = chunk.length;
    for (let i = 0; i < length && phase !== Phase.Stopped; i++) {
      const code = chunk.charCodeAt(i);
      if (phase === Phase.InElement) {
        if (inString) {
          if (escaped) escaped = false;
          else if (code === BACKSLASH) escaped = true;
          else if (code === QUOTE) inString = false;
          else if (code === NEWLINE) line++;
          continue;
        }
        if (code === QUOTE) inString = true;
        else if (code === OPEN_BRACE || code === OPEN_BRACKET) {
          if (brackets.length < MAX_NESTING) brackets.push(code);
          else {
            excessDepth++;
            refused = TOO_DEEP;
            carry = '';
          }
        } else if (code === CLOSE_BRACE || code === CLOSE_BRACKET) {
          if (excessDepth > 0) {
            excessDepth--;
            continue;
          }
          if (brackets.length === 0 && code === CLOSE_BRACKET) {
            emit(out, carry + chunk.slice(elementStart, i));
            carry = '';
            phase = Phase.AfterArray;
            continue;
          }
          const open = brackets.pop();
          if (open !== (code === CLOSE_BRACE ? OPEN_BRACE : OPEN_BRACKET)) {
            phase = stop(
              out,
              line,
              `malformed JSON: unexpected '${String.fromCharCode(code)}' (brackets do not match); the rest of the file was not read`,
            );
          }
        } else if (code === COMMA && brackets.length === 0) {
          emit(out, carry + chunk.slice(elementStart, i));
          carry = '';
          phase = Phase.BeforeElement;
          afterComma = true;
        } else if (code === NEWLINE) line++;
        continue;
      }
      if (code === NEWLINE) line++;
      if (isSpace(code)) continue;
      if (phase === Phase.BeforeArray) {
        if (code === OPEN_BRACKET) phase = Phase.BeforeElement;
        else phase = stop(out, line, "not a JSON array: the input must start with '['");
      } else if (phase === Phase.BeforeElement) {
        if (code === CLOSE_BRACKET) {
          if (afterComma)
            out.push({
              line,
              problem: { field: 'record', reason: "malformed JSON: trailing comma before ']'" },
            });
          phase = Phase.AfterArray;
        } else if (code === COMMA) {
          out.push({
            line,
            problem: { field: 'record', reason: 'malformed JSON: empty element (two commas in a row)' },
          });
        } else {
          phase = Phase.InElement;
          afterComma = false;
          elementLine = line;
          elementStart = i;
          carry = '';
          i--; // let the element scanner see its first character
        }
      } else if (phase === Phase.AfterArray) {
        phase = stop(out, line, "unexpected data after the closing ']' of the JSON array");
      }
    }
    if (phase === Phase.InElement && !refused) {
      carry += chunk.slice(elementStart === -1 ? 0 : elementStart);
      if (carry.length > MAX_RECORD_CHARS) {
        refused = TOO_LONG;
        carry = '';
      }
    }
    if (out.length > 0) yield out;
  }
  if (phase === Phase.InElement || phase === Phase.BeforeElement) {
    const out: InputItem[] = [];
    const unclosed = "unexpected end of input: the JSON array is not closed with ']'";
    phase = stop(
      out,
      phase === Phase.InElement ? elementLine : line,
      phase === Phase.InElement && refused ? `${refused.reason}; ${unclosed}` : unclosed,
    );
    yield out;
  }
};
