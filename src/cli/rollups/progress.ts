import cliProgress from 'cli-progress';
import { isoTimestamp } from '../../domain/time.js';
import { PROGRESS_BAR_PRESET, progressBarOptions } from '../progress-bar.js';

/**
 * Where a long check or rebuild is, day by day, on stderr: a bar on a terminal; otherwise a line a
 * day, which a log or CI keeps (a check of a year of rows takes minutes).
 */
export class DayProgress {
  readonly #stream: NodeJS.WritableStream;
  readonly #bar: cliProgress.SingleBar | undefined;
  readonly #total: number;
  #done = 0;

  constructor(stream: NodeJS.WritableStream & { isTTY?: boolean }, command: string, total: number) {
    this.#stream = stream;
    this.#total = total;
    if (stream.isTTY) {
      this.#bar = new cliProgress.SingleBar(
        progressBarOptions(
          stream,
          `rollups: ${command} [{bar}] {value}/{total} days | {day} | ETA {eta_formatted}`,
        ),
        PROGRESS_BAR_PRESET,
      );
      this.#bar.start(total, 0, { day: '' });
    }
  }

  /** One day finished; `detail` says what it found or did. */
  day(day: Date, detail: string): void {
    this.#done++;
    const date = isoTimestamp(day).slice(0, 10);
    if (this.#bar) this.#bar.update(this.#done, { day: date });
    else this.#stream.write(`rollups: ${date} (${this.#done}/${this.#total}): ${detail}\n`);
  }

  stop(): void {
    this.#bar?.stop();
  }
}
