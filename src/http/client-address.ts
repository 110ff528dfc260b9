import type { IncomingMessage } from 'node:http';

/** The address of a request made in-process (`app.fetch` in tests), which has no socket. */
export const IN_PROCESS_ADDRESS = 'in-process';
/** Client addresses longer than this are cut: a header's value is the client's to choose. */
const MAX_ADDRESS_LENGTH = 64;

/**
 * Who sent a request, for the limits that are per client: the first address in `header` when a
 * trusted proxy sets one (CLIENT_ADDRESS_HEADER, e.g. x-forwarded-for), else the socket's peer.
 * Yoga hands node:http's request to plugins and resolvers as `serverContext.req`.
 */
export function clientAddress(
  request: Request,
  serverContext: { req?: Pick<IncomingMessage, 'socket'> } | undefined,
  header: string | undefined,
): string {
  if (header) {
    const first = request.headers.get(header)?.split(',')[0]?.trim();
    if (first) return first.slice(0, MAX_ADDRESS_LENGTH);
  }
  return serverContext?.req?.socket.remoteAddress ?? IN_PROCESS_ADDRESS;
}
