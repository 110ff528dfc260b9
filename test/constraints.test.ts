import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from './support/database.js';

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(() => db.drop());

const at = (iso: string) => new Date(iso);

describe('metrics table constraints', () => {
  it('stores a valid sample with a bigint id and millisecond timestamp', async () => {
    const created = await db.prisma.metric.create({
      data: { timestamp: at('2030-01-01T00:00:00.123Z'), cpuLoad: 1.5, concurrency: 7 },
    });
    expect(typeof created.id).toBe('bigint');
    const stored = await db.prisma.metric.findFirstOrThrow({ where: { id: created.id } });
    expect(stored.timestamp.toISOString()).toBe('2030-01-01T00:00:00.123Z');
    expect(stored.cpuLoad).toBe(1.5);
  });

  it('accepts timestamps past 2038, which the seed int column could not hold', async () => {
    const created = await db.prisma.metric.create({
      data: { timestamp: at('2100-06-01T12:00:00Z'), cpuLoad: 0, concurrency: 0 },
    });
    expect(created.timestamp.getUTCFullYear()).toBe(2100);
  });

  it('rejects a duplicate timestamp', async () => {
    await db.prisma.metric.create({
      data: { timestamp: at('2031-01-01T00:00:00Z'), cpuLoad: 1, concurrency: 1 },
    });
    await expect(
      db.prisma.metric.create({
        data: { timestamp: at('2031-01-01T00:00:00Z'), cpuLoad: 2, concurrency: 2 },
      }),
    ).rejects.toMatchObject({ code: 'P2002' });
  });

  // Literal SQL, so that nothing in the application (nor JSON, which has no NaN) is what rejects it.
  it.each([
    ['a negative cpu_load', "'-0.01'", '1', 'metrics_cpu_load_finite_non_negative'],
    ['a NaN cpu_load', "'NaN'", '1', 'metrics_cpu_load_finite_non_negative'],
    ['an infinite cpu_load', "'Infinity'", '1', 'metrics_cpu_load_finite_non_negative'],
    ['a negative concurrency', "'0.5'", '-1', 'metrics_concurrency_non_negative'],
  ])('rejects %s at the database', async (_label, cpuLoad, concurrency, constraint) => {
    const before = await db.prisma.metric.count();
    await expect(
      db.prisma.$executeRawUnsafe(
        `INSERT INTO metrics ("timestamp", cpu_load, concurrency) VALUES (now(), ${cpuLoad}::real, ${concurrency})`,
      ),
    ).rejects.toThrow(constraint);
    expect(await db.prisma.metric.count()).toBe(before);
  });

  it('rejects a missing timestamp, or a sample with neither value', async () => {
    await expect(
      db.prisma.$executeRawUnsafe('INSERT INTO metrics (cpu_load, concurrency) VALUES (1, 1)'),
    ).rejects.toThrow(/null value/);
    await expect(
      db.prisma.$executeRawUnsafe('INSERT INTO metrics ("timestamp") VALUES (now())'),
    ).rejects.toThrow(/metrics_has_a_value/);
  });

  it('takes a sample with one value, in the default source when it names none', async () => {
    await db.prisma.$executeRawUnsafe(
      `INSERT INTO metrics ("timestamp", concurrency) VALUES ('2026-01-02', 1)`,
    );
    await db.prisma.$executeRawUnsafe(`INSERT INTO metrics ("timestamp", cpu_load) VALUES ('2026-01-03', 1)`);
    const rows = await db.prisma.metric.findMany({
      where: { timestamp: { in: [new Date('2026-01-02'), new Date('2026-01-03')] } },
      orderBy: { timestamp: 'asc' },
    });
    expect(rows.map(({ sourceId, cpuLoad, concurrency }) => ({ sourceId, cpuLoad, concurrency }))).toEqual([
      { sourceId: 1, cpuLoad: null, concurrency: 1 },
      { sourceId: 1, cpuLoad: 1, concurrency: null },
    ]);
  });
});
