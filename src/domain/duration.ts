const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400, w: 604_800 };
const DURATION = /^(\d+[smhdw])+$/;

/** Parses "90s", "15m", "1h30m", "1d" or a number of seconds into whole seconds, or undefined. */
export function parseDurationSeconds(value: unknown): number | undefined {
  let seconds: number | undefined;
  if (typeof value === 'number') {
    seconds = value;
  } else if (typeof value === 'string') {
    const text = value.trim().toLowerCase();
    if (/^\d+$/.test(text)) {
      seconds = Number(text);
    } else if (DURATION.test(text)) {
      seconds = 0;
      for (const [, amount, unit] of text.matchAll(/(\d+)([smhdw])/g)) {
        seconds += Number(amount) * (UNIT_SECONDS[unit as string] as number);
      }
    }
  }
  return seconds !== undefined && Number.isSafeInteger(seconds) && seconds > 0 ? seconds : undefined;
}

/** Whole seconds as a duration is written (the inverse of parseDurationSeconds): 1d, 12h, 1h30m. */
export function formatDurationSeconds(seconds: number): string {
  let rest = seconds;
  let text = '';
  for (const unit of ['d', 'h', 'm', 's']) {
    const size = UNIT_SECONDS[unit] as number;
    if (rest >= size) {
      text += `${Math.floor(rest / size)}${unit}`;
      rest %= size;
    }
  }
  return text || '0s';
}
