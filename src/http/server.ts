import { createServer, type RequestListener, Server } from 'node:http';
import type { Logger } from '../observability/logger.js';

export interface HttpServer {
  server: Server;
  /** The port bound (useful with PORT=0). */
  port: number;
  /** Stops taking connections and lets in-flight requests finish, up to `timeoutMs`. */
  close(timeoutMs: number): Promise<void>;
}

/** Listens with `handler`: the app, or a server made elsewhere (the metrics port's). */
export async function listen(
  handler: RequestListener | Server,
  options: { host: string; port: number; logger: Logger },
): Promise<HttpServer> {
  const server = handler instanceof Server ? handler : createServer(handler);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : options.port;
  return {
    server,
    port,
    async close(timeoutMs) {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      // Keep-alive connections with no request in flight would hold `close` open for their timeout.
      server.closeIdleConnections();
      const deadline = setTimeout(() => {
        options.logger.warn({ timeoutMs }, 'Requests still running at the deadline: closing them');
        server.closeAllConnections();
      }, timeoutMs);
      await closed;
      clearTimeout(deadline);
    },
  };
}
