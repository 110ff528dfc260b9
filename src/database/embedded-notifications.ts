/** A notification as PostgreSQL's NotificationResponse message carries it. */
export interface Notification {
  processId: number;
  channel: string;
  payload: string;
}

/** The backend message type byte of a NotificationResponse ('A'). */
const NOTIFICATION_RESPONSE = 0x41;
const HEADER_BYTES = 5;
const decoder = new TextDecoder();

/**
 * Finds the NotificationResponse messages in the backend's answer to one protocol message, as it
 * streams out in chunks of any size. Other messages are skipped by their length, never copied.
 */
export class NotificationScanner {
  readonly #onNotification: (notification: Notification) => void;
  /** The current message's header (type and length), while it is incomplete. */
  readonly #header = new Uint8Array(HEADER_BYTES);
  #headerBytes = 0;
  /** Body bytes of the current message still to come. */
  #remaining = 0;
  /** The current message's body, kept only for a notification. */
  #body: Uint8Array | undefined;
  #bodyBytes = 0;

  constructor(onNotification: (notification: Notification) => void) {
    this.#onNotification = onNotification;
  }

  push(chunk: Uint8Array): void {
    let offset = 0;
    while (offset < chunk.length) {
      if (this.#headerBytes < HEADER_BYTES) {
        const take = Math.min(HEADER_BYTES - this.#headerBytes, chunk.length - offset);
        this.#header.set(chunk.subarray(offset, offset + take), this.#headerBytes);
        this.#headerBytes += take;
        offset += take;
        if (this.#headerBytes < HEADER_BYTES) return;
        // The length counts itself, not the type byte.
        this.#remaining = new DataView(this.#header.buffer).getInt32(1) - 4;
        this.#body = this.#header[0] === NOTIFICATION_RESPONSE ? new Uint8Array(this.#remaining) : undefined;
        this.#bodyBytes = 0;
      }
      const take = Math.min(this.#remaining, chunk.length - offset);
      this.#body?.set(chunk.subarray(offset, offset + take), this.#bodyBytes);
      this.#bodyBytes += take;
      this.#remaining -= take;
      offset += take;
      if (this.#remaining === 0) {
        if (this.#body) this.#onNotification(parseNotification(this.#body));
        this.#headerBytes = 0;
        this.#body = undefined;
      }
    }
  }
}

/** The body of a NotificationResponse: Int32 process id, then channel and payload as C strings. */
function parseNotification(body: Uint8Array): Notification {
  const processId = new DataView(body.buffer, body.byteOffset).getInt32(0);
  const channelEnd = body.indexOf(0, 4);
  const payloadEnd = body.indexOf(0, channelEnd + 1);
  return {
    processId,
    channel: decoder.decode(body.subarray(4, channelEnd)),
    payload: decoder.decode(body.subarray(channelEnd + 1, payloadEnd === -1 ? body.length : payloadEnd)),
  };
}
