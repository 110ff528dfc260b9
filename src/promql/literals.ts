// PromQL literal tokens as Prometheus 2.42 reads them. Regexes here only classify single tokens.

const HEX_INTEGER = /^0[xX][0-9a-fA-F]+$/;
const OCTAL_INTEGER = /^0[0-7]+$/;
const DECIMAL = /^(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$/;
const DURATION =
  /^(?:([0-9]+)y)?(?:([0-9]+)w)?(?:([0-9]+)d)?(?:([0-9]+)h)?(?:([0-9]+)m)?(?:([0-9]+)s)?(?:([0-9]+)ms)?$/;
const DURATION_UNIT_MS = [365 * 86_400_000, 7 * 86_400_000, 86_400_000, 3_600_000, 60_000, 1_000, 1];

/**
 * A number token's value, or undefined when it is not one Prometheus 2.42 accepts. Integers go
 * through Go's ParseInt with base 0 first, so `010` is octal 8 and `0x1f` is 31.
 */
export function parseNumber(token: string): number | undefined {
  const sign = token.startsWith('-') ? -1 : 1;
  const unsigned = token.startsWith('-') || token.startsWith('+') ? token.slice(1) : token;
  const lower = unsigned.toLowerCase();
  if (lower === 'inf') return sign * Number.POSITIVE_INFINITY;
  if (lower === 'nan') return Number.NaN;
  if (HEX_INTEGER.test(unsigned)) return sign * Number(BigInt(unsigned));
  if (OCTAL_INTEGER.test(unsigned)) return sign * Number(BigInt(`0o${unsigned.slice(1)}`));
  if (DECIMAL.test(unsigned)) return sign * Number(unsigned);
  return undefined;
}

/** A duration token (`5m`, `1h30m`, `90s`) in milliseconds, or undefined when it is not one. */
export function parseDuration(token: string): number | undefined {
  const match = DURATION.exec(token);
  if (!match || token === '') return undefined;
  let total = 0;
  DURATION_UNIT_MS.forEach((unitMs, i) => {
    const count = match[i + 1];
    if (count !== undefined) total += Number(count) * unitMs;
  });
  return total;
}

const SIMPLE_ESCAPES: Record<string, string> = {
  a: '\x07',
  b: '\b',
  f: '\f',
  n: '\n',
  r: '\r',
  t: '\t',
  v: '\v',
  '\\': '\\',
  '"': '"',
  "'": "'",
};

/** Go's strconv.Unquote for the three PromQL string forms: "…", '…' (with escapes) and `…` (raw). */
export function unquoteString(token: string): string | undefined {
  const quote = token[0];
  if (token.length < 2 || token[token.length - 1] !== quote) return undefined;
  const body = token.slice(1, -1);
  if (quote === '`') return body;
  if (quote !== '"' && quote !== "'") return undefined;
  let result = '';
  for (let i = 0; i < body.length; i++) {
    const char = body[i] as string;
    if (char !== '\\') {
      result += char;
      continue;
    }
    const escaped = body[i + 1];
    if (escaped === undefined) return undefined;
    const simple = SIMPLE_ESCAPES[escaped];
    if (simple !== undefined) {
      result += simple;
      i++;
      continue;
    }
    const digits = escaped === 'x' ? 2 : escaped === 'u' ? 4 : escaped === 'U' ? 8 : 0;
    if (digits > 0) {
      const hex = body.slice(i + 2, i + 2 + digits);
      if (!/^[0-9a-fA-F]+$/.test(hex) || hex.length !== digits) return undefined;
      result += String.fromCodePoint(Number.parseInt(hex, 16));
      i += 1 + digits;
      continue;
    }
    const octal = body.slice(i + 1, i + 4);
    if (/^[0-7]{3}$/.test(octal)) {
      result += String.fromCharCode(Number.parseInt(octal, 8));
      i += 3;
      continue;
    }
    return undefined;
  }
  return result;
}
