import type { PrismaClient } from '../database.js';
import { jsonResponse } from './json.js';

/** Liveness, with the seed's contract: 200 and the JSON string "Ping!". Never touches the database. */
export function healthz(): Response {
  return jsonResponse('Ping!');
}

/** Readiness: the database answers a trivial query within `timeoutMs`, else 503 with the reason. */
export async function readyz(prisma: PrismaClient, timeoutMs: number): Promise<Response> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`the database did not answer within ${timeoutMs} ms`)),
      timeoutMs,
    );
  });
  try {
    await Promise.race([prisma.$queryRaw`SELECT 1`, timeout]);
    return jsonResponse({ status: 'ready' });
  } catch (error) {
    const reason = error instanceof Error ? error.message.trim().split('\n').at(-1) : String(error);
    return jsonResponse({ status: 'unavailable', reason: `database: ${reason}` }, 503);
  } finally {
    clearTimeout(timer);
  }
}
