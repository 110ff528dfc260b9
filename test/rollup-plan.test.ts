// How a window splits into rollup parts and raw edges.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { levelsForBucket, ROLLUP_LEVELS, windowParts } from '../src/domain/rollup-plan.js';

const WIDTH = Object.fromEntries(ROLLUP_LEVELS.map(({ level, widthMs }) => [level, widthMs]));
const at = (iso: string) => new Date(iso);

describe('window parts', () => {
  it('reads raw to the minute, minutes to the hour, hours to the day, then days', () => {
    const parts = windowParts({ start: at('2026-01-01T10:30:15Z'), end: at('2026-01-03T02:00:30Z') }, [
      'day',
      'hour',
      'minute',
    ]);
    expect(parts.map(({ source, start, end }) => [source, start?.toISOString(), end?.toISOString()])).toEqual(
      [
        ['raw', '2026-01-01T10:30:15.000Z', '2026-01-01T10:31:00.000Z'],
        ['minute', '2026-01-01T10:31:00.000Z', '2026-01-01T11:00:00.000Z'],
        ['hour', '2026-01-01T11:00:00.000Z', '2026-01-02T00:00:00.000Z'],
        ['day', '2026-01-02T00:00:00.000Z', '2026-01-03T00:00:00.000Z'],
        ['hour', '2026-01-03T00:00:00.000Z', '2026-01-03T02:00:00.000Z'],
        ['raw', '2026-01-03T02:00:00.000Z', '2026-01-03T02:00:30.000Z'],
      ],
    );
  });

  it('reads an open window from the coarsest level alone', () => {
    expect(windowParts({}, ['day', 'hour', 'minute'])).toEqual([
      { source: 'day', start: undefined, end: undefined },
    ]);
    expect(windowParts({ end: at('2026-01-01T00:01:30Z') }, ['day', 'hour', 'minute'])).toEqual([
      { source: 'day', start: undefined, end: at('2026-01-01T00:00:00Z') },
      { source: 'minute', start: at('2026-01-01T00:00:00Z'), end: at('2026-01-01T00:01:00Z') },
      { source: 'raw', start: at('2026-01-01T00:01:00Z'), end: at('2026-01-01T00:01:30Z') },
    ]);
  });

  it('uses the levels whose width divides a series bucket', () => {
    expect(levelsForBucket(45)).toEqual([]);
    expect(levelsForBucket(90)).toEqual([]);
    expect(levelsForBucket(120)).toEqual(['minute']);
    expect(levelsForBucket(5400)).toEqual(['minute']);
    expect(levelsForBucket(7200)).toEqual(['hour', 'minute']);
    expect(levelsForBucket(2 * 86_400)).toEqual(['day', 'hour', 'minute']);
  });

  it('tiles any window in order, each rollup part aligned to its level', () => {
    const instant = fc.integer({ min: Date.UTC(2025, 0, 1), max: Date.UTC(2027, 0, 1) });
    const levels = fc.subarray(['day', 'hour', 'minute'] as const);
    fc.assert(
      fc.property(instant, instant, levels, (a, b, chosen) => {
        const [start, end] = [new Date(Math.min(a, b)), new Date(Math.max(a, b) + 1)];
        const parts = windowParts({ start, end }, chosen);
        expect(parts[0]?.start).toEqual(start);
        expect(parts.at(-1)?.end).toEqual(end);
        parts.forEach((part, index) => {
          expect((part.start as Date) < (part.end as Date)).toBe(true);
          if (index > 0) expect(part.start).toEqual(parts[index - 1]?.end);
          if (part.source !== 'raw') {
            expect(chosen).toContain(part.source);
            expect((part.start as Date).getTime() % (WIDTH[part.source] as number)).toBe(0);
            expect((part.end as Date).getTime() % (WIDTH[part.source] as number)).toBe(0);
          } else {
            // Raw rows only where no whole bucket of the finest level fits.
            const finest = Math.min(...chosen.map((level) => WIDTH[level] as number));
            if (chosen.length > 0) {
              const firstBoundary = Math.ceil((part.start as Date).getTime() / finest) * finest;
              expect(firstBoundary + finest).toBeGreaterThan((part.end as Date).getTime());
            }
          }
        });
      }),
      { numRuns: 500 },
    );
  });

  it('has the same hours and days whether minutes are a level or not', () => {
    // A summary reads its hours and days once, for its totals (with minutes) and its sketches (without).
    const instant = fc.option(fc.integer({ min: Date.UTC(2025, 0, 1), max: Date.UTC(2027, 0, 1) }), {
      nil: undefined,
    });
    const coarse = (parts: ReturnType<typeof windowParts>) =>
      parts.filter(({ source }) => source === 'day' || source === 'hour');
    fc.assert(
      fc.property(instant, instant, (a, b) => {
        const [start, end] =
          a !== undefined && b !== undefined ? [Math.min(a, b), Math.max(a, b) + 1] : [a, b];
        const range = {
          start: start === undefined ? undefined : new Date(start),
          end: end === undefined ? undefined : new Date(end),
        };
        expect(coarse(windowParts(range, ['day', 'hour', 'minute']))).toEqual(
          coarse(windowParts(range, ['day', 'hour'])),
        );
      }),
      { numRuns: 500 },
    );
  });
});
