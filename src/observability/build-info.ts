import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { projectRoot } from '../paths.js';

function packageVersion(): string {
  const text = readFileSync(join(projectRoot, 'package.json'), 'utf8');
  return (JSON.parse(text) as { version: string }).version;
}

/**
 * The commit this process runs: BUILD_COMMIT (set by an image build), else the checkout's HEAD,
 * else "unknown" (an image without .git).
 */
function commit(): string {
  if (process.env.BUILD_COMMIT) return process.env.BUILD_COMMIT;
  try {
    const head = readFileSync(join(projectRoot, '.git/HEAD'), 'utf8').trim();
    if (!head.startsWith('ref: ')) return head.slice(0, 12);
    return readFileSync(join(projectRoot, '.git', head.slice(5)), 'utf8')
      .trim()
      .slice(0, 12);
  } catch {
    return 'unknown';
  }
}

/** Read once per process, for `target_info`, `metrics_api_build_info` and the tracer's version. */
export const buildInfo = { version: packageVersion(), commit: commit() };
