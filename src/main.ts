import { createServer } from 'node:http';
import { createApp, GRAPHQL_ENDPOINT } from './app.js';
import { ConfigError, parseConfig } from './config.js';
import { openDatabase } from './database.js';
import { createLogger } from './logger.js';

let config: ReturnType<typeof parseConfig>;
try {
  config = parseConfig();
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  process.stderr.write(`${error.message}\nSee .env.example for every variable.\n`);
  process.exit(1);
}

const logger = createLogger(config);
const database = await openDatabase(config, logger);
const app = createApp({ config, prisma: database.prisma, logger });
const server = createServer(app);

server.listen(config.port, config.host, () => {
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  logger.info(
    {
      url: `http://${config.host}:${port}${GRAPHQL_ENDPOINT}`,
      database: database.embedded ? 'embedded' : 'DATABASE_URL',
    },
    'metrics-api listening',
  );
});

let shuttingDown = false;
async function shutdown(signal: NodeJS.Signals) {
  if (shuttingDown) return;
  shuttingDown = true;
  logger.info({ signal }, 'Shutting down: no new connections; finishing in-flight requests');
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  // Keep-alive connections with no request in flight would hold `close` open for their timeout.
  server.closeIdleConnections();
  const deadline = setTimeout(() => {
    logger.warn(
      { timeoutMs: config.shutdownTimeoutMs },
      'Requests still running at the deadline: closing them',
    );
    server.closeAllConnections();
  }, config.shutdownTimeoutMs);
  await closed;
  clearTimeout(deadline);
  await app.dispose();
  await database.close();
  logger.info('Stopped');
  process.exit(0);
}

process.once('SIGTERM', shutdown);
process.once('SIGINT', shutdown);
