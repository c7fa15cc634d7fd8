// Request frames, byte for byte (docs/PROTOCOL.md section 3.1). Pure: no I/O, no clock.
//
//   correlation_id i32 | message_type u8 | topic_length i32 | topic | timestamp i64
//   | [offset i32, CONSUME only] | payload_length i32 | payload
//
// payload_length is present in every request, CREATE_TOPIC and CONSUME included (REQ-7,
// CLIENT-1); lengths count bytes (CLIENT-2); integers are big-endian (WIRE-1).

import { INT32_MAX, INT32_MIN, INT64_MAX, INT64_MIN, MAX_TOPIC_BYTES, MessageType } from './limits.js';

const EMPTY = Buffer.alloc(0);

/** Payloads up to this size are copied into the header's buffer: one write instead of two. */
const INLINE_PAYLOAD_BYTES = 4096;

/**
 * A request, ready to be numbered: `{ type, topic, timestamp, payload, offset }`, with
 * `timestamp` a BigInt (ms since the epoch), `payload` a Buffer (PRODUCE; empty otherwise) and
 * `offset` a number (CONSUME). Frozen, so that a retry sends exactly the same request.
 */
export function makeRequest(type, topic, { timestamp, payload = EMPTY, offset = 0 } = {}) {
  return Object.freeze({ type, topic, timestamp: BigInt(timestamp), payload, offset });
}

function checkInt32(what, value) {
  if (!Number.isInteger(value) || value < INT32_MIN || value > INT32_MAX) {
    throw new RangeError(`${what} ${value} does not fit a signed 32-bit integer`);
  }
}

/**
 * The bytes of `request` sent with `correlationId`, as one or two Buffers to write in order.
 * Throws RangeError for what the wire cannot carry (a field out of range, a topic over 255
 * bytes); the client's own checks (a valid name, at most 1 MiB) come before this.
 */
export function encodeRequest(request, correlationId) {
  const { type, topic, timestamp, payload, offset } = request;
  checkInt32('correlation id', correlationId);
  if (type !== MessageType.PRODUCE && type !== MessageType.CONSUME && type !== MessageType.CREATE_TOPIC) {
    throw new RangeError(`unknown message type ${type}`);
  }
  const name = Buffer.from(topic, 'utf8');
  if (name.length > MAX_TOPIC_BYTES) throw new RangeError(`topic is ${name.length} bytes, over ${MAX_TOPIC_BYTES}`);
  if (typeof timestamp !== 'bigint' || timestamp < INT64_MIN || timestamp > INT64_MAX) {
    throw new RangeError(`timestamp ${timestamp} does not fit a signed 64-bit integer`);
  }
  const body = type === MessageType.PRODUCE ? payload : EMPTY; // REQ-9: nothing with the others
  checkInt32('payload length', body.length);
  const isConsume = type === MessageType.CONSUME;
  if (isConsume) checkInt32('offset', offset);
  const headBytes = 21 + name.length + (isConsume ? 4 : 0);
  const inline = body.length <= INLINE_PAYLOAD_BYTES;
  const head = Buffer.allocUnsafe(headBytes + (inline ? body.length : 0));
  let at = head.writeInt32BE(correlationId, 0);
  at = head.writeUInt8(type, at);
  at = head.writeInt32BE(name.length, at);
  at += name.copy(head, at);
  at = head.writeBigInt64BE(timestamp, at);
  if (isConsume) at = head.writeInt32BE(offset, at);
  at = head.writeInt32BE(body.length, at);
  if (inline) {
    body.copy(head, at);
    return [head];
  }
  return [head, body];
}
