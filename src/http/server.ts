import { createServer, type RequestListener, Server } from 'node:http';
import type { Logger } from '../observability/logger.js';

export interface HttpServer {
  server: Server;
  /** The port bound (useful with PORT=0). */
  port: number;
  /** Stops taking connections and lets in-flight requests finish, up to `timeoutMs`. */
  close(timeoutMs: number): Promise<void>;
}

/** Why an address cannot be listened on, by the code Node gives. */
const LISTEN_PROBLEMS: Record<string, string> = {
  EADDRINUSE: 'the port is in use by another process',
  EACCES: 'this user may not bind it (ports below 1024 need privileges)',
  EADDRNOTAVAIL: 'the host is not an address of this machine',
  ENOTFOUND: 'the host name does not resolve',
};

/** The server could not listen: the message, one line, names the address and the variables to change. */
export class ListenError extends Error {
  constructor(message: string, cause: unknown) {
    super(message, { cause });
    this.name = 'ListenError';
  }
}

/**
 * Listens with `handler`: the app, or a server made elsewhere (the metrics port's). `settings`
 * names the variables that choose the address (`PORT and HOST`), for the ListenError it fails with.
 */
export async function listen(
  handler: RequestListener | Server,
  options: { host: string; port: number; logger: Logger; settings: string },
): Promise<HttpServer> {
  const server = handler instanceof Server ? handler : createServer(handler);
  await new Promise<void>((resolve, reject) => {
    const failed = (error: NodeJS.ErrnoException) => {
      const problem = (error.code && LISTEN_PROBLEMS[error.code]) ?? error.message;
      const address = `${options.host}:${options.port}`;
      reject(
        new ListenError(
          `Cannot listen on ${address}: ${problem}. Set ${options.settings} to change it.`,
          error,
        ),
      );
    };
    server.once('error', failed);
    server.listen(options.port, options.host, () => {
      server.off('error', failed);
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
