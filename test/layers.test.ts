import { relative } from 'node:path';
import { build } from 'esbuild';
import { describe, expect, it } from 'vitest';

/**
 * The rooms of src/, lowest first. Data flows one way: a module imports from its own room or from
 * a room below it, never from one above or beside it. The composition root (main.ts) sits on top.
 */
const LAYERS: readonly (readonly string[])[] = [
  ['domain', 'paths.ts'],
  ['promql'],
  ['config.ts'],
  ['observability'],
  ['database'],
  ['store'],
  ['ingest', 'live', 'maintenance'],
  ['graphql', 'cli'],
  ['http'],
  ['main.ts'],
];

const roomOf = (file: string): string => relative('src', file).split('/')[0] as string;
const rankOf = (room: string): number => LAYERS.findIndex((rooms) => rooms.includes(room));

/** Every import between two files of src/, as esbuild resolves them from the entry points. */
async function sourceImports(): Promise<{ from: string; to: string }[]> {
  const result = await build({
    entryPoints: ['src/main.ts', 'scripts/ingest.ts', 'scripts/partitions.ts', 'scripts/rollups.ts'],
    bundle: true,
    write: false,
    metafile: true,
    platform: 'node',
    format: 'esm',
    packages: 'external',
    logLevel: 'silent',
    outdir: 'unused',
  });
  return Object.entries(result.metafile.inputs).flatMap(([from, input]) =>
    from.startsWith('src/')
      ? input.imports.filter(({ path }) => path.startsWith('src/')).map(({ path }) => ({ from, to: path }))
      : [],
  );
}

describe('the layers of src/', () => {
  it('name every room of src/ that the entry points reach', async () => {
    const rooms = new Set((await sourceImports()).flatMap(({ from, to }) => [roomOf(from), roomOf(to)]));
    // generated/ is Prisma's and Pothos' output, read only by the rooms that own those tools.
    const unranked = [...rooms].filter((room) => room !== 'generated' && rankOf(room) === -1);
    expect(unranked).toEqual([]);
    expect(rooms.size).toBeGreaterThan(8);
  });

  it('are imported downwards only: no room imports a room above or beside it', async () => {
    const upward = (await sourceImports())
      .filter(({ from, to }) => roomOf(to) !== 'generated' && roomOf(from) !== roomOf(to))
      .filter(({ from, to }) => rankOf(roomOf(to)) >= rankOf(roomOf(from)))
      .map(({ from, to }) => `${from} -> ${to}`);
    expect(upward).toEqual([]);
  });

  it('keep presentation off the database: graphql/, http/ and cli/ meet it only through the store', async () => {
    // cli/database.ts opens the command's connection, as main.ts opens the service's: composition.
    const presentation = new Set(['graphql', 'http', 'cli']);
    const direct = (await sourceImports())
      .filter(({ from, to }) => presentation.has(roomOf(from)) && roomOf(to) === 'database')
      .filter(({ from }) => from !== 'src/cli/database.ts')
      .map(({ from, to }) => `${from} -> ${to}`);
    expect(direct).toEqual([]);
  });
});
