import fc from 'fast-check';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseTimestamptz } from '../src/store/pg-timestamptz.js';
import { createTestDatabase, type TestDatabase } from './support/database.js';

const parseWithPgTypes = pg.types.getTypeParser(1184, 'text') as (text: string) => Date;

let db: TestDatabase;
let sql: pg.Client;

beforeAll(async () => {
  db = await createTestDatabase();
  sql = new pg.Client({ connectionString: db.url });
  await sql.connect();
});
afterAll(async () => {
  await sql.end();
  await db.drop();
});

/** PostgreSQL's own text for each instant, in a session time zone. */
async function postgresText(timeZone: string, instants: string[]): Promise<string[]> {
  await sql.query(`SET TIME ZONE '${timeZone}'`);
  const { rows } = await sql.query<{ text: string }>({
    text: 'SELECT t::timestamptz::text AS text FROM unnest($1::text[]) WITH ORDINALITY AS u(t, n) ORDER BY n',
    values: [instants],
  });
  return rows.map((row) => row.text);
}

// Whole hours, half hours (+05:30, -03:30), a 45-minute offset, and a local mean time with seconds
// (Amsterdam before 1937 was +00:19:32).
const TIME_ZONES = ['UTC', 'Asia/Kolkata', 'America/St_Johns', 'Asia/Kathmandu', 'Europe/Amsterdam'];

describe('parseTimestamptz', () => {
  it.each(TIME_ZONES)(
    'reads every millisecond instant from 0100 to 9999 as PostgreSQL wrote it, in %s',
    async (zone) => {
      const instants = fc.sample(
        fc.date({
          min: new Date('0100-01-01T00:00:00Z'),
          max: new Date('9999-12-31T23:59:59.999Z'),
          noInvalidDate: true,
        }),
        { numRuns: 2000, seed: 42 },
      );
      const texts = await postgresText(
        zone,
        instants.map((instant) => instant.toISOString()),
      );
      texts.forEach((text, index) => {
        expect(parseTimestamptz(text).toISOString(), text).toBe(instants[index]?.toISOString());
      });
    },
  );

  it('agrees with pg on the shapes it hands over: BC, years before 100, five-digit years, infinity', async () => {
    const texts = await postgresText('UTC', [
      '0044-03-15 12:00:00+00 BC',
      '0099-12-31 23:59:59.999+00',
      '0001-01-01 00:00:00+00',
      '12345-06-07 08:09:10+00',
      'infinity',
      '-infinity',
    ]);
    expect(texts).toContain('0044-03-15 12:00:00+00 BC');
    for (const text of texts) {
      // pg reads infinity as the number ±Infinity rather than a Date.
      expect(Number(parseTimestamptz(text)), text).toBe(Number(parseWithPgTypes(text)));
    }
  });

  it('drops digits beyond the millisecond, like a Date must', async () => {
    const [text] = await postgresText('Asia/Kolkata', ['2026-11-27 10:00:00.123456+00']);
    expect(text).toBe('2026-11-27 15:30:00.123456+05:30');
    expect(parseTimestamptz(text as string).toISOString()).toBe('2026-11-27T10:00:00.123Z');
  });
});
