import { ConfigError, parseConfig } from '../../config.js';
import { isoTimestamp } from '../../domain/time.js';
import { createLogger } from '../../observability/logger.js';
import { RollupStore } from '../../store/rollup-store.js';
import {
  COMMAND_EXIT,
  type CommandIo,
  cannotOpenDatabase,
  describeError,
  UsageError,
  usageErrorText,
} from '../command.js';
import { type Database, openCommandDatabase } from '../database.js';
import { parseRollupOptions } from './args.js';
import { HELP } from './help.js';
import { DayProgress } from './progress.js';

/** Exit codes: done and equal; check found differences; usage, configuration or database error. */
export const EXIT = { ...COMMAND_EXIT, differences: 1 } as const;

/** At most this many differing buckets are printed; the count covers all of them. */
const MAX_PRINTED = 1000;

export async function run(argv: string[], io: CommandIo): Promise<number> {
  let database: Database | undefined;
  try {
    const options = parseRollupOptions(argv);
    if (options.help) {
      io.stdout.write(HELP);
      return EXIT.ok;
    }
    const config = parseConfig({ LOG_LEVEL: 'warn', ...io.env });
    const logger = createLogger(config, { service: 'metrics-rollups' });
    database = await openCommandDatabase(config, logger).catch(cannotOpenDatabase);
    const store = new RollupStore(database);
    const days = await store.rawDays(options.range);
    const progress = new DayProgress(io.stderr, options.command ?? '', days.length);
    let differing = 0;
    try {
      for (const day of days) {
        if (options.command === 'rebuild') {
          await store.rebuildDay(day);
          progress.day(day, 'rebuilt');
          continue;
        }
        const differences = await store.checkDay(day);
        for (const { level, bucket, columns } of differences) {
          differing++;
          if (differing <= MAX_PRINTED)
            io.stdout.write(`${level} ${isoTimestamp(bucket)}: ${columns.join(', ')}\n`);
        }
        progress.day(day, differences.length === 0 ? 'equal' : `${differences.length} bucket(s) differ`);
      }
    } finally {
      progress.stop();
    }
    if (options.command === 'rebuild') {
      io.stderr.write(`rollups: rebuilt ${days.length} day(s) from raw rows\n`);
      return EXIT.ok;
    }
    io.stderr.write(
      differing === 0
        ? `rollups: ${days.length} day(s) checked, all equal to the raw rows\n`
        : `rollups: ${differing} bucket(s) differ from the raw rows in ${days.length} day(s) checked; ` +
            'npm run rollups -- rebuild recomputes them\n',
    );
    return differing === 0 ? EXIT.ok : EXIT.differences;
  } catch (error) {
    if (error instanceof ConfigError) {
      io.stderr.write(`${error.message}\n`);
    } else if (error instanceof UsageError) {
      io.stderr.write(usageErrorText('rollups', error));
    } else {
      io.stderr.write(`rollups: ${describeError(error)}\n`);
    }
    return EXIT.failed;
  } finally {
    await database?.close();
  }
}
