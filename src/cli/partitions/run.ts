import {
  COMMAND_EXIT,
  type CommandIo,
  cannotOpenDatabase,
  describeDatabase,
  describeError,
  parseCommandConfig,
  UsageError,
} from '../command.js';
import { parsePartitionOptions } from './args.js';
import { HELP } from './help.js';

/** At most this many partitions a run: a typo in a year should not make a million tables. */
const MAX_PARTITIONS = 10_000;

/** The partitions command: `run(argv, io)` returns the exit code (scripts/partitions.ts). */
export async function run(argv: string[], io: CommandIo): Promise<number> {
  try {
    const options = parsePartitionOptions(argv);
    if (options === 'help') {
      io.stdout.write(HELP);
      return COMMAND_EXIT.ok;
    }
    const config = parseCommandConfig(io.env);
    const sizeSeconds = options.sizeSeconds ?? config.partitions.sizeSeconds;
    const [{ createLogger }, { openCommandDatabase }, { MetricStore }, { partitionStarts }] =
      await Promise.all([
        import('../../observability/logger.js'),
        import('../database.js'),
        import('../../store/metric-store.js'),
        import('../../store/metric-partitions.js'),
      ]);
    const count = partitionStarts(options.from, options.to, sizeSeconds).length;
    if (count > MAX_PARTITIONS) {
      throw new UsageError(
        `[${options.from.toISOString()}, ${options.to.toISOString()}) is ${count} partitions of ${sizeSeconds} s; at most ${MAX_PARTITIONS} a run`,
      );
    }
    const logger = createLogger(config, { service: 'metrics-partitions', fd: 2, isTTY: false });
    const database = await openCommandDatabase(config, logger).catch(cannotOpenDatabase);
    try {
      const store = new MetricStore(database);
      let created: string[];
      try {
        created = await store.partitions.create(options.from, options.to, sizeSeconds);
      } catch (error) {
        throw new UsageError(
          `making partitions in ${describeDatabase(database)} failed: ${describeError(error)}`,
        );
      }
      for (const name of created) io.stdout.write(`${name}\n`);
      io.stderr.write(
        `partitions: ${created.length} created, ${count - created.length} of [${options.from.toISOString()}, ${options.to.toISOString()}) already covered\n`,
      );
      return COMMAND_EXIT.ok;
    } finally {
      await database.close();
    }
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    io.stderr.write(`partitions: ${error.message}\n`);
    return COMMAND_EXIT.failed;
  }
}
