import { ConfigError, parseConfig } from '../../config.js';
import { parseIsoTimestamp } from '../../domain/time.js';
import { parseCommandLine, UsageError } from '../command.js';

const DATE_ONLY = /^\d{4}-\d{2}-\d{2}$/;

function parseInstant(option: string, text: string | undefined): Date {
  if (text === undefined) throw new UsageError(`${option} is required`);
  const parsed = parseIsoTimestamp(DATE_ONLY.test(text) ? `${text}T00:00:00Z` : text);
  if ('error' in parsed) throw new UsageError(`${option} "${text}": ${parsed.error}`);
  return new Date(parsed.ms);
}

export interface PartitionOptions {
  from: Date;
  to: Date;
  sizeSeconds: number | undefined;
}

export function parsePartitionOptions(argv: string[]): PartitionOptions | 'help' {
  const { values } = parseCommandLine({
    args: argv,
    strict: true,
    options: {
      from: { type: 'string' },
      to: { type: 'string' },
      size: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) return 'help';
  const from = parseInstant('--from', values.from);
  const to = parseInstant('--to', values.to);
  if (from >= to) throw new UsageError(`--from (${values.from}) must be before --to (${values.to})`);
  let sizeSeconds: number | undefined;
  if (values.size !== undefined) {
    // The rule of PARTITION_SIZE, checked by the configuration's own schema.
    try {
      sizeSeconds = parseConfig({ PARTITION_SIZE: values.size }).partitions.sizeSeconds;
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      throw new UsageError(`--size "${values.size}": ${error.problems[0]?.replace(/^PARTITION_SIZE: /, '')}`);
    }
  }
  return { from, to, sizeSeconds };
}
