// Reading one response from the bytes received (docs/PROTOCOL.md section 4.1). Pure: no I/O.
//
// A response has no length and no type: its layout is chosen by the request it answers, the
// oldest pending one (RESP-2, CONN-5), and by its success flag. Every length is checked against
// the limits as soon as it is read, before waiting for (or allocating) what it announces
// (CLIENT-8, CLIENT-12). Whatever the segmentation, the same bytes give the same answer (WIRE-5).

import { ProtocolError } from './errors.js';
import { MAX_PAYLOAD_BYTES, MAX_TOPIC_BYTES, MESSAGE_TYPE_NAMES, MessageType, UNSOLICITED_FRAME } from './limits.js';

/** What `readResponse` returns for the unsolicited frame: it answers no request (RESP-7). */
export const UNSOLICITED = Object.freeze({ kind: 'unsolicited', errorCode: 8 });

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function violation(reason, message, correlationId = null) {
  return new ProtocolError(message, { reason, correlationId });
}

/** Whether the buffered bytes (up to 6) are a prefix of the unsolicited frame, from byte `from`. */
function unsolicitedPrefix(head, from) {
  for (let i = from; i < head.length; i += 1) if (head[i] !== UNSOLICITED_FRAME[i]) return false;
  return true;
}

/**
 * The next response in `buf` (a ReceiveBuffer), consumed from it; null while it is incomplete.
 *
 * `expected` is the oldest pending request, `{ type, correlationId }`, or null when none is
 * pending. Returns `UNSOLICITED`, `{ kind: 'error', correlationId, errorCode }`, or the success
 * of the expected type: `{ kind: 'create_topic', correlationId, timestamp, topic }`,
 * `{ kind: 'produce', correlationId, timestamp, offset }` or
 * `{ kind: 'consume', correlationId, timestamp, nextOffset, payload }` (timestamps are BigInt).
 * Throws ProtocolError as soon as the bytes cannot be a valid answer.
 */
export function readResponse(buf, expected, limits = {}) {
  const maxPayload = limits.maxPayloadBytes ?? MAX_PAYLOAD_BYTES;
  const maxTopic = limits.maxTopicBytes ?? MAX_TOPIC_BYTES;
  const n = buf.length;
  if (n === 0) return null;
  if (expected === null) {
    // Nothing pending: only the unsolicited frame may come (CLIENT-9).
    const head = buf.peek(Math.min(n, 6));
    if (!unsolicitedPrefix(head, 0)) {
      throw violation('unexpected-frame', `the broker sent bytes while no request was pending (${head.toString('hex')}...)`);
    }
    if (n < 6) return null;
    buf.skip(6);
    return UNSOLICITED;
  }
  if (n < 4) return null;
  const want = expected.correlationId;
  const cid = buf.peek(4).readInt32BE(0);
  const mismatch = () =>
    violation(
      'correlation-mismatch',
      `a response with correlation id ${cid} while request ${want} (${MESSAGE_TYPE_NAMES[expected.type]}) was the oldest pending`,
      cid,
    );
  if (cid === 0) {
    // 00 00 00 00 00 08 is always the unsolicited frame, whatever is pending (RESP-7); any other
    // frame with id 0 answers only a pending request 0 (CLIENT-6).
    const head = buf.peek(Math.min(n, 6));
    if (unsolicitedPrefix(head, 4)) {
      if (n < 6) return null;
      buf.skip(6);
      return UNSOLICITED;
    }
    if (want !== 0) throw mismatch();
  } else if (cid !== want) {
    throw mismatch();
  }
  if (n < 5) return null;
  const success = buf.peek(5).readInt8(4);
  if (success === 0) {
    if (n < 6) return null;
    const errorCode = buf.peek(6).readInt8(5);
    buf.skip(6);
    return Object.freeze({ kind: 'error', correlationId: cid, errorCode });
  }
  if (success !== 1) throw violation('bad-success-flag', `success flag ${success} (neither 0 nor 1) in the answer to request ${cid}`, cid);
  switch (expected.type) {
    case MessageType.PRODUCE: {
      if (n < 17) return null;
      const b = buf.peek(17);
      const response = { kind: 'produce', correlationId: cid, timestamp: b.readBigInt64BE(5), offset: b.readInt32BE(13) };
      buf.skip(17);
      return Object.freeze(response);
    }
    case MessageType.CREATE_TOPIC: {
      if (n < 15) return null;
      const topicLen = buf.peek(15).readUInt16BE(13);
      if (topicLen > maxTopic) {
        throw violation('length-over-limit', `CREATE_TOPIC answer with topic_len ${topicLen}, over ${maxTopic}`, cid);
      }
      if (n < 15 + topicLen) return null;
      const b = buf.peek(15 + topicLen);
      let topic;
      try {
        topic = utf8.decode(b.subarray(15));
      } catch {
        throw violation('topic-not-utf8', `CREATE_TOPIC answer whose topic is not valid UTF-8`, cid);
      }
      const response = { kind: 'create_topic', correlationId: cid, timestamp: b.readBigInt64BE(5), topic };
      buf.skip(15 + topicLen);
      return Object.freeze(response);
    }
    case MessageType.CONSUME: {
      if (n < 21) return null;
      const head = buf.peek(21);
      const payloadLen = head.readInt32BE(17);
      if (payloadLen < 0) throw violation('negative-length', `CONSUME answer with payload_length ${payloadLen}`, cid);
      if (payloadLen > maxPayload) {
        throw violation('length-over-limit', `CONSUME answer with payload_length ${payloadLen}, over ${maxPayload}`, cid);
      }
      if (n < 21 + payloadLen) return null;
      const b = buf.peek(21 + payloadLen);
      const response = {
        kind: 'consume',
        correlationId: cid,
        timestamp: b.readBigInt64BE(5),
        nextOffset: b.readInt32BE(13),
        payload: Buffer.from(b.subarray(21)), // a copy: the receive buffer's chunk is not kept alive
      };
      buf.skip(21 + payloadLen);
      return Object.freeze(response);
    }
    default:
      throw new RangeError(`unknown message type ${expected.type}`);
  }
}
