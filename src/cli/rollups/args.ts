import { parseTimestamp, type TimeRange } from '../../domain/time.js';
import { parseCommandLine, UsageError } from '../command.js';

export type RollupCommand = 'check' | 'rebuild';

export interface RollupOptions {
  command: RollupCommand | undefined;
  range: TimeRange;
  help: boolean;
}

function timestampOption(name: string, value: string | undefined): Date | undefined {
  if (value === undefined) return undefined;
  const parsed = parseTimestamp(value, true);
  if ('error' in parsed) throw new UsageError(`--${name}: ${parsed.error}`, true);
  return new Date(parsed.ms);
}

export function parseRollupOptions(argv: string[]): RollupOptions {
  const { values, positionals } = parseCommandLine({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: { from: { type: 'string' }, to: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
  });
  const help = values.help ?? false;
  const [command, ...extra] = positionals;
  if (help) return { command: undefined, range: {}, help };
  if (command !== 'check' && command !== 'rebuild') {
    throw new UsageError(
      command === undefined
        ? 'a command is required: check or rebuild'
        : `unknown command: ${command} (check or rebuild)`,
      true,
    );
  }
  if (extra.length > 0) throw new UsageError(`unexpected argument: ${extra[0]}`, true);
  const range = { start: timestampOption('from', values.from), end: timestampOption('to', values.to) };
  if (range.start && range.end && range.start >= range.end) {
    throw new UsageError('--from must be before --to', true);
  }
  return { command, range, help };
}
