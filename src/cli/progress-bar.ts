import cliProgress from 'cli-progress';

/** How a command draws its progress bars on a terminal: at most 5 frames a second, gone once done. */
export function progressBarOptions(stream: NodeJS.WritableStream, format: string): cliProgress.Options {
  return { stream, hideCursor: true, clearOnComplete: true, fps: 5, format };
}

/** The bars' look, the same for every command. */
export const PROGRESS_BAR_PRESET = cliProgress.Presets.shades_classic;
