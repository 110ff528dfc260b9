import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { afterPrefix } from '../src/store/source-reads.js';

/** Code point order, as a C collation orders text. */
const compare = (a: string, b: string) => {
  const [x, y] = [[...a], [...b]];
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    const d = (x[i]?.codePointAt(0) as number) - (y[i]?.codePointAt(0) as number);
    if (d !== 0) return d;
  }
  return x.length - y.length;
};

describe('afterPrefix', () => {
  it('is after every string that starts with the prefix and before every other string after the prefix', () => {
    const text = fc
      .string({ unit: 'binary', maxLength: 6 })
      .filter((s) => !/[\uD800-\uDFFF]/u.test(s.replace(/[\uD800-\uDBFF][\uDC00-\uDFFF]/g, '')));
    fc.assert(
      fc.property(
        text.filter((s) => s.length > 0),
        text,
        text,
        (prefix, rest, other) => {
          const after = afterPrefix(prefix);
          if (after === undefined) return;
          expect(compare(prefix + rest, after)).toBeLessThan(0);
          if (compare(other, prefix) >= 0 && !other.startsWith(prefix))
            expect(compare(other, after)).toBeGreaterThanOrEqual(0);
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('skips the surrogates and has none after a prefix of the largest code point alone', () => {
    expect(afterPrefix('web-')).toBe('web.');
    expect(afterPrefix('a\uD7FF')).toBe('a\uE000');
    expect(afterPrefix('a\u{10FFFF}')).toBe('b');
    expect(afterPrefix('\u{10FFFF}\u{10FFFF}')).toBeUndefined();
  });
});
