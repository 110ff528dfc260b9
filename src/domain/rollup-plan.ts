import type { TimeRange } from './time.js';

/** The rollup levels, coarsest first, with their widths in milliseconds; each width divides the next. */
export const ROLLUP_LEVELS = [
  { level: 'day', widthMs: 86_400_000 },
  { level: 'hour', widthMs: 3_600_000 },
  { level: 'minute', widthMs: 60_000 },
] as const;

export type RollupLevel = (typeof ROLLUP_LEVELS)[number]['level'];

/** Part of a window, read from a rollup level or from raw rows; an absent bound is open. */
export interface WindowPart {
  source: RollupLevel | 'raw';
  start: Date | undefined;
  end: Date | undefined;
}

export function levelWidthMs(level: RollupLevel): number {
  return ROLLUP_LEVELS.find((candidate) => candidate.level === level)?.widthMs as number;
}

/** The levels whose width divides a series bucket of `bucketSeconds`, coarsest first. */
export function levelsForBucket(bucketSeconds: number): RollupLevel[] {
  return ROLLUP_LEVELS.filter(({ widthMs }) => (bucketSeconds * 1000) % widthMs === 0).map(
    ({ level }) => level,
  );
}

/**
 * Splits a window into the coarsest whole buckets of `levels` it holds, the next level's whole
 * buckets on either side of those, and so on down to raw rows for what no bucket fits: a year
 * aligned to days is one day part; a window from 10:30:15 is raw to 10:31, minutes to 11:00,
 * hours to midnight, then days. The parts tile the window without overlap, in time order. An
 * open bound counts as aligned to every level.
 */
export function windowParts({ start, end }: TimeRange, levels: readonly RollupLevel[]): WindowPart[] {
  const widths = ROLLUP_LEVELS.filter(({ level }) => levels.includes(level));
  const parts: WindowPart[] = [];
  const cover = (from: Date | undefined, to: Date | undefined, index: number): void => {
    if (from && to && from >= to) return;
    const level = widths[index];
    if (!level) {
      parts.push({ source: 'raw', start: from, end: to });
      return;
    }
    const alignedStart = from && new Date(Math.ceil(from.getTime() / level.widthMs) * level.widthMs);
    const alignedEnd = to && new Date(Math.floor(to.getTime() / level.widthMs) * level.widthMs);
    if (alignedStart && alignedEnd && alignedStart >= alignedEnd) {
      cover(from, to, index + 1);
      return;
    }
    if (from) cover(from, alignedStart, index + 1);
    parts.push({ source: level.level, start: alignedStart, end: alignedEnd });
    if (to) cover(alignedEnd, to, index + 1);
  };
  cover(start, end, 0);
  return parts;
}
