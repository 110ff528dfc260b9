import { existsSync } from 'node:fs';
import { symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { CACHE_DIR, ROOT } from './dataset.js';
import { mustRun, runCommand } from './processes.js';

/**
 * The service as built at an earlier commit, in a worktree of its own under bench/.cache sharing
 * this checkout's node_modules, for a comparison in the same run; built once. Returns its main.js.
 */
export async function buildAt(ref: string, why: string, log: (line: string) => void): Promise<string> {
  const dir = join(CACHE_DIR, `worktree-${ref}`);
  if (!existsSync(join(dir, 'dist/src/main.js'))) {
    log(`building ${ref} (${why}) in ${dir}`);
    await runCommand('git', ['worktree', 'remove', '--force', dir], { cwd: ROOT });
    await mustRun('git', ['worktree', 'add', '--detach', dir, ref], { cwd: ROOT });
    await symlink(join(ROOT, 'node_modules'), join(dir, 'node_modules'), 'dir');
    await mustRun('npm', ['run', 'build'], { cwd: dir });
  }
  return join(dir, 'dist/src/main.js');
}
