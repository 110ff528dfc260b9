import WebSocket from 'ws';

/**
 * What a Node process the bench started with `--inspect=127.0.0.1:<port>` retains: its memory after
 * a full garbage collection, asked through the inspector protocol (HeapProfiler.collectGarbage,
 * then process.memoryUsage() in the process). RSS alone does not say it: V8 keeps the young
 * generation it grew (up to the service's --max-semi-space-size) and the old space it once used.
 */
export interface RetainedMemory {
  heapUsedKiB: number;
  externalKiB: number;
  rssKiB: number;
}

interface InspectorTarget {
  webSocketDebuggerUrl: string;
}

export async function retainedMemory(inspectorPort: number): Promise<RetainedMemory> {
  const targets = (await (
    await fetch(`http://127.0.0.1:${inspectorPort}/json/list`)
  ).json()) as InspectorTarget[];
  const target = targets[0];
  if (!target) throw new Error(`no inspector target on port ${inspectorPort}`);
  const socket = new WebSocket(target.webSocketDebuggerUrl);
  await new Promise<void>((resolve, reject) => {
    socket.once('open', () => resolve());
    socket.once('error', reject);
  });
  let nextId = 1;
  const call = (method: string, params: Record<string, unknown> = {}) =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      const id = nextId++;
      const onMessage = (data: WebSocket.RawData) => {
        const message = JSON.parse(data.toString()) as {
          id?: number;
          result?: Record<string, unknown>;
          error?: { message: string };
        };
        if (message.id !== id) return;
        socket.off('message', onMessage);
        if (message.error) reject(new Error(`${method}: ${message.error.message}`));
        else resolve(message.result ?? {});
      };
      socket.on('message', onMessage);
      socket.send(JSON.stringify({ id, method, params }));
    });
  try {
    await call('HeapProfiler.collectGarbage');
    const evaluated = await call('Runtime.evaluate', {
      expression: 'JSON.stringify(process.memoryUsage())',
      returnByValue: true,
    });
    const usage = JSON.parse((evaluated.result as { value: string }).value) as NodeJS.MemoryUsage;
    return {
      heapUsedKiB: Math.round(usage.heapUsed / 1024),
      externalKiB: Math.round(usage.external / 1024),
      rssKiB: Math.round(usage.rss / 1024),
    };
  } finally {
    socket.close();
  }
}
