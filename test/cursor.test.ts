import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  CURSOR_MAX_MS,
  CURSOR_MIN_MS,
  decodeAddedCursor,
  decodeCursor,
  decodeSourceCursor,
  encodeAddedCursor,
  encodeCursor,
  encodeSourceCursor,
  MAX_ADDED_POSITION,
} from '../src/domain/cursor.js';

/** The position of a row of source 1, the one series there was before sources. */
const inDefault = (ms: number) => ({ timestamp: new Date(ms), sourceId: 1 });

/** The cursor as it was first defined: base64url of `metric:` and the epoch milliseconds. */
const plainCursor = (ms: number) => Buffer.from(`metric:${ms}`).toString('base64url');
const DATE_RANGE_MS = 8.64e15;

describe('page cursors', () => {
  it('of source 1 are the same bytes as base64url of metric:<epoch ms>, for any instant a Date holds', () => {
    fc.assert(
      fc.property(fc.integer({ min: -DATE_RANGE_MS, max: DATE_RANGE_MS }), (ms) => {
        expect(encodeCursor(inDefault(ms))).toBe(plainCursor(ms));
      }),
      { numRuns: 2000 },
    );
  });

  it('are exact where the milliseconds change their number of digits and around zero', () => {
    const edges = [0, 1, -1, 999_999_999, 1e9, 1e9 + 1, -1e9, -1e9 - 1, 1e12 - 1, 1e12, 1_768_125_600_000];
    const signed = [...edges, ...edges.map((ms) => -ms), DATE_RANGE_MS, -DATE_RANGE_MS];
    expect(signed.map((ms) => encodeCursor(inDefault(ms)))).toEqual(signed.map(plainCursor));
  });

  it('decode to the instant they were made from, for any instant PostgreSQL and a Date both hold', () => {
    fc.assert(
      fc.property(fc.integer({ min: CURSOR_MIN_MS, max: CURSOR_MAX_MS }), (ms) => {
        expect(decodeCursor(encodeCursor(inDefault(ms)))).toEqual(inDefault(ms));
      }),
      { numRuns: 500 },
    );
    expect(decodeCursor(plainCursor(CURSOR_MIN_MS))).toEqual(inDefault(CURSOR_MIN_MS));
    expect(new Date(CURSOR_MIN_MS).toISOString()).toBe('-004713-11-24T00:00:00.000Z');
  });

  it('name no instant before timestamptz begins (4714-11-24 BC) or past what a Date holds', () => {
    const outside = fc.oneof(
      fc.integer({ min: Number.MIN_SAFE_INTEGER, max: CURSOR_MIN_MS - 1 }),
      fc.integer({ min: CURSOR_MAX_MS + 1, max: Number.MAX_SAFE_INTEGER }),
    );
    fc.assert(
      fc.property(outside, (ms) => {
        expect(decodeCursor(plainCursor(ms))).toBeUndefined();
      }),
      { numRuns: 1000 },
    );
    expect(decodeCursor(plainCursor(-210_866_803_200_001))).toBeUndefined();
  });
});

describe('page cursors of a source other than 1', () => {
  const withSource = (text: string) => Buffer.from(`metric:${text}`).toString('base64url');

  it('write the source after the instant, and decode to the position they were made from', () => {
    expect(encodeCursor({ timestamp: new Date(1_000), sourceId: 7 })).toBe(withSource('1000:7'));
    fc.assert(
      fc.property(
        fc.integer({ min: CURSOR_MIN_MS, max: CURSOR_MAX_MS }),
        fc.integer({ min: 2, max: 2 ** 31 - 1 }),
        (ms, sourceId) => {
          const position = { timestamp: new Date(ms), sourceId };
          expect(decodeCursor(encodeCursor(position))).toEqual(position);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('name no source id outside a positive 32-bit integer, nor one written otherwise', () => {
    for (const text of [
      '1000:0',
      '1000:-1',
      '1000:2147483648',
      '1000:01',
      '1000:',
      '1000:1e3',
      '1000:7:1',
      '1000: 7',
    ]) {
      expect(decodeCursor(withSource(text)), text).toBeUndefined();
    }
    expect(decodeCursor(withSource('1000:2147483647'))).toEqual({
      timestamp: new Date(1000),
      sourceId: 2 ** 31 - 1,
    });
    // Source 1 written out is the same position as without it.
    expect(decodeCursor(withSource('1000:1'))).toEqual(inDefault(1000));
  });
});

describe('sources cursors', () => {
  it('decode to the position they were made from, in its order only', () => {
    for (const position of [
      { order: 'name', name: 'web-1' },
      { order: 'name', name: 'ü:ñ 1/2' },
      { order: 'lastSeen', lastSeen: new Date(1_795_651_200_123), id: 42 },
      { order: 'lastSeen', lastSeen: null, id: 1 },
    ] as const) {
      expect(decodeSourceCursor(encodeSourceCursor(position))).toEqual(position);
    }
    expect(decodeSourceCursor(encodeCursor(inDefault(0)))).toBeUndefined();
    expect(decodeCursor(encodeSourceCursor({ order: 'name', name: 'a' }))).toBeUndefined();
    const text = (raw: string) => Buffer.from(raw).toString('base64url');
    for (const raw of [
      'source-name:',
      `source-name:${'x'.repeat(257)}`,
      'source-seen::0',
      'source-seen:x:1',
      'source-seen:1',
    ]) {
      expect(decodeSourceCursor(text(raw)), raw).toBeUndefined();
    }
  });
});

describe('added-sample cursors', () => {
  const plainAdded = (position: string) => Buffer.from(`added:${position}`).toString('base64url');

  it('decode to the position they were made from, for every bigint id', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: MAX_ADDED_POSITION }), (id) => {
        expect(decodeAddedCursor(encodeAddedCursor(id))).toBe(id);
      }),
      { numRuns: 1000 },
    );
    expect(decodeAddedCursor(plainAdded('9223372036854775807'))).toBe(MAX_ADDED_POSITION);
  });

  it('name no position past the largest bigint, nor anything but digits', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: MAX_ADDED_POSITION + 1n, max: 10n ** 19n - 1n }), (id) => {
        expect(decodeAddedCursor(plainAdded(String(id)))).toBeUndefined();
      }),
      { numRuns: 1000 },
    );
    for (const text of [
      '9999999999999999999',
      '9223372036854775808',
      '-1',
      '1e3',
      ' 1',
      '',
      '1'.repeat(20),
    ]) {
      expect(decodeAddedCursor(plainAdded(text))).toBeUndefined();
    }
  });
});
