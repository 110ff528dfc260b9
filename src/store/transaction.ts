import type pg from 'pg';

/**
 * Runs `work` on one connection of `pool`, in a transaction that `begin` opens (`BEGIN`, or
 * `BEGIN` with what must run first in it, e.g. `BEGIN; SET LOCAL TimeZone TO 'UTC'`, sent as one
 * round trip), and commits it; on any failure rolls it back and rethrows the failure as it is.
 *
 * A connection whose ROLLBACK failed (the server went away, or the session is in a state nobody
 * knows) is destroyed, never handed back to the pool: the next checkout would inherit an open
 * transaction or a dead socket.
 */
export async function withTransaction<T>(
  pool: pg.Pool,
  begin: string,
  work: (client: pg.PoolClient) => Promise<T>,
): Promise<T> {
  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    await client.query(begin);
    const result = await work(client);
    await client.query('COMMIT');
    return result;
  } catch (error) {
    await client.query('ROLLBACK').catch((rollbackFailed: Error) => {
      broken = rollbackFailed;
    });
    throw error;
  } finally {
    client.release(broken);
  }
}
