import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import type { SourceFallback } from '../../domain/sample.js';
import { checkSourceName, labelsFromPairs } from '../../domain/source.js';
import type { ConflictMode } from '../../domain/writes.js';
import { FORMATS, type Format } from '../../ingest/inputs.js';
import { parseCommandLine, UsageError } from '../command.js';

export interface Options {
  files: string[];
  format: Format | undefined;
  onConflict: ConflictMode;
  strict: boolean;
  dryRun: boolean;
  batchSize: number | undefined;
  printIds: boolean;
  json: boolean;
  help: boolean;
  /** --source and --label: the source of records that name none. */
  source: SourceFallback | undefined;
}

export function parseOptions(argv: string[]): Options {
  const { values, positionals } = parseCommandLine({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      format: { type: 'string' },
      'on-conflict': { type: 'string', default: 'skip' },
      strict: { type: 'boolean', default: false },
      'dry-run': { type: 'boolean', default: false },
      'batch-size': { type: 'string' },
      'print-ids': { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      source: { type: 'string' },
      label: { type: 'string', multiple: true },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  const format = values.format;
  if (format !== undefined && !(FORMATS as readonly string[]).includes(format)) {
    throw new UsageError(`--format must be one of ${FORMATS.join(', ')}, got "${format}"`, true);
  }
  const onConflict = values['on-conflict'];
  if (onConflict !== 'skip' && onConflict !== 'update') {
    throw new UsageError(`--on-conflict must be skip or update, got "${onConflict}"`, true);
  }
  let batchSize: number | undefined;
  if (values['batch-size'] !== undefined) {
    batchSize = Number(values['batch-size']);
    if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > 30_000) {
      throw new UsageError(
        `--batch-size must be an integer from 1 to 30000, got "${values['batch-size']}"`,
        true,
      );
    }
  }
  const sourceName = values.source;
  const sourceProblem = sourceName === undefined ? null : checkSourceName(sourceName);
  if (sourceProblem) throw new UsageError(`--source: ${sourceProblem}`, true);
  const labelPairs = values.label ?? [];
  if (labelPairs.length > 0 && sourceName === undefined) {
    throw new UsageError('--label gives the labels of --source: give --source too', true);
  }
  const labels = labelsFromPairs(labelPairs);
  if ('problem' in labels) throw new UsageError(`--label: ${labels.problem}`, true);
  const files = positionals.length > 0 ? positionals : ['-'];
  if (files.filter((file) => file === '-').length > 1) {
    throw new UsageError('standard input ("-") can be given only once', true);
  }
  return {
    files,
    format: format as Format | undefined,
    onConflict,
    strict: values.strict,
    dryRun: values['dry-run'],
    batchSize,
    printIds: values['print-ids'],
    json: values.json,
    help: values.help,
    source:
      sourceName === undefined
        ? undefined
        : { name: sourceName, labels: labelPairs.length > 0 ? labels.labels : undefined },
  };
}

/** Refuses, before anything is read, a file that cannot be. */
export async function checkReadable(file: string): Promise<void> {
  try {
    await access(file, constants.R_OK);
    if ((await stat(file)).isDirectory())
      throw new UsageError(`${file} is a directory; give the files inside it`);
  } catch (error) {
    if (error instanceof UsageError) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    throw new UsageError(
      code === 'ENOENT'
        ? `${file}: no such file`
        : `${file}: cannot read (${code ?? (error as Error).message})`,
    );
  }
}
