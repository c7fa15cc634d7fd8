// The protocol's numbers in one place: message types, error codes, limits, the topic name rule
// (docs/PROTOCOL.md sections 3, 5 and 6).

export const MessageType = Object.freeze({ PRODUCE: 0x01, CONSUME: 0x02, CREATE_TOPIC: 0x03 });

/** The name of each message type, for messages. */
export const MESSAGE_TYPE_NAMES = Object.freeze({ 1: 'PRODUCE', 2: 'CONSUME', 3: 'CREATE_TOPIC' });

/** Error codes 1..9 (section 5.1). Any other value is reported as `UNKNOWN_<n>` (ERR-2). */
export const ERROR_CODE_NAMES = Object.freeze({
  1: 'INVALID_REQUEST',
  2: 'INVALID_MESSAGE_TYPE',
  3: 'MESSAGE_TOO_LARGE',
  4: 'TOPIC_NOT_FOUND',
  5: 'TOPIC_ALREADY_EXISTS',
  6: 'INVALID_OFFSET',
  7: 'INTERNAL_ERROR',
  8: 'NETWORK_ERROR',
  9: 'RESOURCE_EXHAUSTED',
});

/** The protocol's name for an error code: `TOPIC_NOT_FOUND`, or `UNKNOWN_<n>` (n the signed i8). */
export function codeName(code) {
  return ERROR_CODE_NAMES[code] ?? `UNKNOWN_${code}`;
}

export const MAX_PAYLOAD_BYTES = 1024 * 1024; // SEM-8, inclusive
export const MAX_TOPIC_BYTES = 255; // SEM-2
export const INT32_MIN = -(2 ** 31);
export const INT32_MAX = 2 ** 31 - 1;
export const INT64_MIN = -(2n ** 63n);
export const INT64_MAX = 2n ** 63n - 1n;
export const DEFAULT_PORT = 8080; // CONN-1

/** The broker's unsolicited frame: correlation id 0, success 0, NETWORK_ERROR (RESP-7). */
export const UNSOLICITED_FRAME = Object.freeze([0, 0, 0, 0, 0, 8]);

const TOPIC_NAME = /^[A-Za-z0-9._-]+$/;

/** Why `name` is not a valid topic name (SEM-2), or null when it is. */
export function topicProblem(name) {
  if (typeof name !== 'string') return `topic must be a string, not ${typeof name}`;
  if (name.length === 0) return 'topic name is empty';
  // Every allowed character is one ASCII byte, so characters and bytes agree once the rule holds.
  if (!TOPIC_NAME.test(name)) return `topic name ${JSON.stringify(name)} has characters outside [A-Za-z0-9._-]`;
  if (name.length > MAX_TOPIC_BYTES) return `topic name is ${name.length} bytes, over ${MAX_TOPIC_BYTES}`;
  return null;
}
