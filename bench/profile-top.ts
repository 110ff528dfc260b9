/**
 * Summarizes a V8 .cpuprofile (from `npm run bench -- --cpu-prof`): self time by function and by
 * package, and total (inclusive) time of selected frames.
 *
 *   npx tsx bench/profile-top.ts bench/.cache/profiles/CPU.*.cpuprofile [--top 30] [--frame <regex>]...
 *
 * --frame prints the inclusive time of every function whose "name file:line" matches the regex.
 */
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

/** Where a frame comes from: an npm package, node itself, the project, or V8. */
function origin(url: string): string {
  if (url === '') return '(v8/native)';
  if (url.startsWith('node:')) return 'node:internal';
  const match = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url.replace(/.*node_modules\/\.pnpm\/[^/]+\//, ''));
  if (match) return match[1] as string;
  const project = /\/(dist\/)?(src|bench|scripts)\//.exec(url);
  return project ? `project: ${url.slice((project.index ?? 0) + 1)}` : url;
}

function label(frame: CallFrame): string {
  const file = frame.url
    .replace(/.*node_modules\//, '')
    .replace(/^file:\/\/.*\/(dist\/)?(src|bench)\//, '$2/');
  return `${frame.functionName || '(anonymous)'} ${file}:${frame.lineNumber + 1}`;
}

async function main() {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      top: { type: 'string', default: '30' },
      frame: { type: 'string', multiple: true, default: [] },
    },
  });
  const top = Number(values.top);
  for (const path of positionals) {
    const profile = JSON.parse(await readFile(path, 'utf8')) as Profile;
    const byId = new Map(profile.nodes.map((node) => [node.id, node]));
    const parent = new Map<number, number>();
    for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);

    const selfUs = new Map<number, number>();
    for (const [i, id] of profile.samples.entries()) {
      selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
    }
    const totalUs = profile.endTime - profile.startTime;
    const idleUs = [...selfUs].reduce(
      (sum, [id, us]) => (byId.get(id)?.callFrame.functionName === '(idle)' ? sum + us : sum),
      0,
    );
    const busyUs = totalUs - idleUs;

    const byFunction = new Map<string, number>();
    const byOrigin = new Map<string, number>();
    const inclusive = new Map<string, number>();
    const frames = values.frame.map((pattern) => new RegExp(pattern));
    const framesInclusive = new Map<string, number>();
    for (const [id, us] of selfUs) {
      const node = byId.get(id);
      if (!node || node.callFrame.functionName === '(idle)') continue;
      const name = label(node.callFrame);
      byFunction.set(name, (byFunction.get(name) ?? 0) + us);
      const from = ['(garbage collector)', '(program)'].includes(node.callFrame.functionName)
        ? node.callFrame.functionName
        : origin(node.callFrame.url);
      byOrigin.set(from, (byOrigin.get(from) ?? 0) + us);
      // Inclusive time per package: count each package once per stack.
      const seen = new Set<string>();
      for (let current: number | undefined = id; current !== undefined; current = parent.get(current)) {
        const frame = byId.get(current)?.callFrame;
        if (!frame) break;
        const key = origin(frame.url);
        if (!seen.has(key)) {
          seen.add(key);
          inclusive.set(key, (inclusive.get(key) ?? 0) + us);
        }
        if (frames.length > 0) {
          const name = label(frame);
          if (!seen.has(name) && frames.some((pattern) => pattern.test(name))) {
            seen.add(name);
            framesInclusive.set(name, (framesInclusive.get(name) ?? 0) + us);
          }
        }
      }
    }
    const pct = (us: number) => `${((us / busyUs) * 100).toFixed(1).padStart(5)}%`;
    const print = (title: string, entries: Map<string, number>, limit: number) => {
      process.stdout.write(`\n${title}\n`);
      for (const [name, us] of [...entries].sort((a, b) => b[1] - a[1]).slice(0, limit)) {
        process.stdout.write(`${pct(us)}  ${(us / 1000).toFixed(0).padStart(7)} ms  ${name}\n`);
      }
    };
    process.stdout.write(
      `${path}: ${(totalUs / 1e6).toFixed(1)} s profiled, ${(busyUs / 1e6).toFixed(1)} s on CPU (${((busyUs / totalUs) * 100).toFixed(0)}%); percentages are of CPU time\n`,
    );
    print('Self time by package', byOrigin, top);
    print('Inclusive time by package (a stack counts once per package)', inclusive, top);
    print('Self time by function', byFunction, top);
    if (frames.length > 0) print('Inclusive time of the --frame functions', framesInclusive, top);
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`${(error as Error).stack ?? String(error)}\n`);
  process.exitCode = 1;
});
