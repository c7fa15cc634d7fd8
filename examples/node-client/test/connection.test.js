// ClientConnection, the sans-IO state machine: numbering, matching, framing whatever the
// segmentation, and every way a connection ends. Bytes in, events out; no socket involved.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { ClientConnection } from '../lib/connection.js';
import { INT32_MAX, MessageType } from '../lib/limits.js';
import { makeRequest } from '../lib/requests.js';

const { PRODUCE, CONSUME, CREATE_TOPIC } = MessageType;

const i32 = (n) => {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n);
  return b;
};
const i64 = (n) => {
  const b = Buffer.alloc(8);
  b.writeBigInt64BE(BigInt(n));
  return b;
};
// Answers written out by hand from docs/PROTOCOL.md section 4.1.
const produceOk = (cid, ts, offset) => Buffer.concat([i32(cid), Buffer.from([1]), i64(ts), i32(offset)]);
const consumeOk = (cid, ts, next, payload) => Buffer.concat([i32(cid), Buffer.from([1]), i64(ts), i32(next), i32(payload.length), payload]);
const createOk = (cid, ts, topic) => {
  const len = Buffer.alloc(2);
  len.writeUInt16BE(Buffer.byteLength(topic));
  return Buffer.concat([i32(cid), Buffer.from([1]), i64(ts), len, Buffer.from(topic)]);
};
const errorFrame = (cid, code) => Buffer.concat([i32(cid), Buffer.from([0, code & 0xff])]);
const UNSOLICITED = Buffer.from('000000000008', 'hex');

function events(conn) {
  const out = [];
  for (let e; (e = conn.nextEvent()) !== null; ) out.push(e);
  return out;
}

/** Three requests in flight: PRODUCE 1, CONSUME 2, CREATE_TOPIC 3, and their answers. */
function threeInFlight() {
  const conn = new ClientConnection();
  conn.send(makeRequest(PRODUCE, 't', { timestamp: 42n, payload: Buffer.from('abc') }));
  conn.send(makeRequest(CONSUME, 't', { timestamp: 1n, offset: 0 }));
  conn.send(makeRequest(CREATE_TOPIC, 'u', { timestamp: 7n }));
  const answers = Buffer.concat([produceOk(1, 42, 0), consumeOk(2, 42, 1, Buffer.alloc(5000, 0xe9)), createOk(3, 7, 'u')]);
  return { conn, answers };
}

test('requests are numbered 1, 2, 3 ... and each frame carries its id and payload_length', () => {
  const conn = new ClientConnection();
  const a = conn.send(makeRequest(CREATE_TOPIC, 'probe-a', { timestamp: 1234567890123n }));
  const b = conn.send(makeRequest(CONSUME, 'probe-a', { timestamp: 1234567890123n, offset: 1 }));
  assert.equal(Buffer.concat(a.data).toString('hex'), '00000001030000000770726f62652d610000011f71fb04cb00000000');
  assert.equal(Buffer.concat(b.data).toString('hex'), '00000002020000000770726f62652d610000011f71fb04cb0000000100000000');
  assert.equal(conn.pending, 2);
  assert.equal(conn.state, 'waiting');
});

test('the counter wraps from 2^31-1 to 1, never 0', () => {
  const conn = new ClientConnection({ firstCorrelationId: INT32_MAX });
  assert.equal(conn.send(makeRequest(PRODUCE, 't', { timestamp: 0n })).request.correlationId, INT32_MAX);
  assert.equal(conn.send(makeRequest(PRODUCE, 't', { timestamp: 0n })).request.correlationId, 1);
  conn.receiveData(Buffer.concat([produceOk(INT32_MAX, 0, 0), produceOk(1, 0, 1)]));
  assert.deepEqual(
    events(conn).map((e) => [e.type, e.request.correlationId, e.response.offset]),
    [['answer', INT32_MAX, 0], ['answer', 1, 1]],
  );
});

test('the topic length counts UTF-8 bytes, not characters', () => {
  const conn = new ClientConnection();
  const { data } = conn.send(makeRequest(PRODUCE, 'café-☕', { timestamp: 0n }));
  assert.equal(data[0].readInt32BE(5), 9);
});

test('pipelined answers are matched in order whatever the segmentation', () => {
  const { answers } = threeInFlight();
  for (const step of [answers.length, 1, 2, 3, 7, 4096]) {
    const { conn } = threeInFlight();
    const got = [];
    for (let at = 0; at < answers.length; at += step) {
      conn.receiveData(answers.subarray(at, at + step));
      got.push(...events(conn));
    }
    assert.deepEqual(
      got.map((e) => [e.type, e.request.correlationId, e.response.kind]),
      [['answer', 1, 'produce'], ['answer', 2, 'consume'], ['answer', 3, 'create_topic']],
      `step ${step}`,
    );
    assert.equal(got[1].response.payload.length, 5000);
    assert.equal(conn.state, 'idle');
  }
});

test('every split point of two coalesced answers gives the same two answers', () => {
  const { answers } = threeInFlight();
  for (let cut = 0; cut <= answers.length; cut += 1) {
    const { conn } = threeInFlight();
    conn.receiveData(answers.subarray(0, cut));
    const got = events(conn);
    conn.receiveData(answers.subarray(cut));
    got.push(...events(conn));
    assert.equal(got.length, 3, `cut at ${cut}`);
  }
});

test('an error answer in the middle leaves the ones around it answered', () => {
  const { conn } = threeInFlight();
  conn.receiveData(Buffer.concat([produceOk(1, 42, 0), errorFrame(2, 6), createOk(3, 7, 'u')]));
  assert.deepEqual(events(conn).map((e) => e.response.kind), ['produce', 'error', 'create_topic']);
});

test('an unknown error code is an error answer with its signed value, not a protocol error', () => {
  const conn = new ClientConnection();
  conn.send(makeRequest(PRODUCE, 't', { timestamp: 0n }));
  conn.receiveData(errorFrame(1, -3));
  const [e] = events(conn);
  assert.equal(e.response.errorCode, -3);
});

test('a wrong correlation id on the 2nd answer: the 1st stands, the rest fail, the connection is broken', () => {
  const { conn } = threeInFlight();
  conn.receiveData(Buffer.concat([produceOk(1, 42, 0), produceOk(9, 42, 1)]));
  const got = events(conn);
  assert.deepEqual(got.map((e) => e.type), ['answer', 'violation']);
  assert.equal(got[1].error.reason, 'correlation-mismatch');
  assert.deepEqual(got[1].unanswered.map((r) => r.correlationId), [2, 3]);
  assert.equal(conn.state, 'broken');
  assert.throws(() => conn.send(makeRequest(PRODUCE, 't', { timestamp: 0n })));
});

test('the unsolicited frame while requests are pending ends the connection', () => {
  const { conn } = threeInFlight();
  conn.receiveData(Buffer.concat([produceOk(1, 42, 0), UNSOLICITED]));
  const got = events(conn);
  assert.deepEqual(got.map((e) => e.type), ['answer', 'unsolicited']);
  assert.deepEqual(got[1].unanswered.map((r) => r.correlationId), [2, 3]);
  assert.equal(conn.state, 'closed');
});

test('a stray id-0 frame is not the unsolicited frame: a protocol error, never an answer', () => {
  const conn = new ClientConnection();
  conn.send(makeRequest(PRODUCE, 't', { timestamp: 0n }));
  conn.receiveData(errorFrame(0, 4));
  assert.equal(events(conn)[0].error.reason, 'correlation-mismatch');
});

test('bytes while nothing is pending are a protocol error as soon as they cannot be the unsolicited frame', () => {
  const conn = new ClientConnection();
  conn.receiveData(Buffer.from('000000', 'hex'));
  assert.deepEqual(events(conn), []);
  conn.receiveData(Buffer.from('03', 'hex'));
  const [e] = events(conn);
  assert.equal(e.type, 'violation');
  assert.equal(e.error.reason, 'unexpected-frame');
});

test('the unsolicited frame on an idle connection closes it with nothing unanswered', () => {
  const conn = new ClientConnection();
  conn.receiveData(UNSOLICITED);
  assert.deepEqual(events(conn), [{ type: 'unsolicited', unanswered: [] }]);
});

test('EOF mid-response reports how much of the answer had come', () => {
  const { conn } = threeInFlight();
  conn.receiveData(produceOk(1, 42, 0).subarray(0, 8));
  conn.receiveData(null);
  const [e] = events(conn);
  assert.equal(e.type, 'end');
  assert.equal(e.partialBytes, 8);
  assert.equal(e.unanswered.length, 3);
});

test('lengths over the limits fail at the length field, before the bytes they announce', () => {
  const conn = new ClientConnection();
  conn.send(makeRequest(CONSUME, 't', { timestamp: 0n, offset: 0 }));
  conn.receiveData(Buffer.concat([i32(1), Buffer.from([1]), i64(0), i32(1), i32(2 ** 31 - 1)]));
  assert.equal(events(conn)[0].error.reason, 'length-over-limit');
});

test('a CREATE_TOPIC echo naming another topic is a protocol error (CLIENT-23)', () => {
  const conn = new ClientConnection();
  conn.send(makeRequest(CREATE_TOPIC, 'orders', { timestamp: 0n }));
  conn.receiveData(createOk(1, 0, 'ordres'));
  assert.equal(events(conn)[0].error.reason, 'topic-echo-mismatch');
});

test('a bad success flag is a protocol error', () => {
  const conn = new ClientConnection();
  conn.send(makeRequest(PRODUCE, 't', { timestamp: 0n }));
  conn.receiveData(Buffer.concat([i32(1), Buffer.from([2])]));
  assert.equal(events(conn)[0].error.reason, 'bad-success-flag');
});

test('close() hands back what was unanswered, and nothing more happens', () => {
  const { conn } = threeInFlight();
  assert.deepEqual(conn.close().map((r) => r.correlationId), [1, 2, 3]);
  conn.receiveData(produceOk(1, 0, 0));
  assert.equal(conn.nextEvent(), null);
  assert.deepEqual(conn.close(), []);
});
