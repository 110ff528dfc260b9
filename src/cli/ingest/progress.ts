import cliProgress from 'cli-progress';
import type { IngestProgress } from '../../ingest/pipeline.js';
import { PROGRESS_BAR_PRESET, progressBarOptions } from '../progress-bar.js';

/** A bar while the size of the input is known (a file), else a count of the records read so far. */
const SIZED_FORMAT = '{phase} {input} [{bar}] {percentage}% | {records} records | ETA {eta_formatted}';
const UNSIZED_FORMAT = '{phase} {input} | {records} records';

/** A progress bar on a terminal, with rejected-record lines printed above it. */
export class Progress {
  private readonly bars: cliProgress.MultiBar;
  private bar: cliProgress.SingleBar | undefined;
  private input = '';
  private readonly started = performance.now();

  constructor(private readonly stream: NodeJS.WritableStream) {
    this.bars = new cliProgress.MultiBar(progressBarOptions(stream, SIZED_FORMAT), PROGRESS_BAR_PRESET);
  }

  update(progress: IngestProgress): void {
    // Short loads finish before a bar would be worth drawing.
    if (!this.bar && performance.now() - this.started < 500) return;
    const payload = { phase: progress.phase, input: progress.input, records: progress.records };
    const total = progress.totalBytes ?? 0;
    if (!this.bar) {
      this.bar = this.bars.create(total, progress.bytes, payload, {
        format: total > 0 ? SIZED_FORMAT : UNSIZED_FORMAT,
      });
    } else if (this.input !== progress.input) {
      this.bar.setTotal(total);
    }
    this.input = progress.input;
    this.bar.update(progress.bytes, payload);
  }

  log(line: string): void {
    if (this.bar) this.bars.log(`${line}\n`);
    else this.stream.write(`${line}\n`);
  }

  stop(): void {
    this.bars.stop();
  }
}
