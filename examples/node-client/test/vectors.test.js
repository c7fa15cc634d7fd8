// The codec against the kit's language-neutral vectors (conformance/vectors/README.md): every
// response vector through readResponse, whole and one byte at a time; every well-formed request
// this client can send, encoded byte for byte.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

import { codeName, MessageType } from '../lib/limits.js';
import { ReceiveBuffer } from '../lib/receive-buffer.js';
import { encodeRequest, makeRequest } from '../lib/requests.js';
import { readResponse } from '../lib/responses.js';

const VECTORS = new URL('../../../conformance/vectors/', import.meta.url);

/** The file, with every timestamp read as an exact BigInt (two of them are ±2^63). */
function load(name) {
  const text = readFileSync(new URL(name, VECTORS), 'utf8').replace(/"timestamp":\s*(-?\d+)/g, '"timestamp": "$1"');
  return JSON.parse(text, (key, value) => (key === 'timestamp' ? BigInt(value) : value)).vectors;
}

function input(v) {
  const parts = [Buffer.from(v.hex, 'hex')];
  if (v.payload_repeat) parts.push(Buffer.alloc(v.payload_repeat.count, Number.parseInt(v.payload_repeat.byte, 16)));
  if (v.hex_tail) parts.push(Buffer.from(v.hex_tail, 'hex'));
  return Buffer.concat(parts);
}

function payloadOf(f) {
  if (f.payload_repeat) return Buffer.alloc(f.payload_repeat.count, Number.parseInt(f.payload_repeat.byte, 16));
  return Buffer.from(f.payload_hex, 'hex');
}

/** A decoded response in the vectors' shape. */
function asVector(r) {
  switch (r.kind) {
    case 'unsolicited':
      return { kind: 'unsolicited', error_code: 'NETWORK_ERROR' };
    case 'error': {
      const name = codeName(r.errorCode);
      return { kind: 'error', correlation_id: r.correlationId, error_code: name.startsWith('UNKNOWN_') ? r.errorCode : name };
    }
    case 'create_topic':
      return { kind: r.kind, correlation_id: r.correlationId, timestamp: r.timestamp, topic: r.topic };
    case 'produce':
      return { kind: r.kind, correlation_id: r.correlationId, timestamp: r.timestamp, offset: r.offset };
    default:
      return { kind: r.kind, correlation_id: r.correlationId, timestamp: r.timestamp, next_offset: r.nextOffset, payload_hex: r.payload.toString('hex') };
  }
}

function expectedFrame(f) {
  if (f.kind !== 'consume') return f;
  const { payload_repeat: _repeat, ...rest } = f;
  return { ...rest, payload_hex: payloadOf(f).toString('hex') };
}

/** Feed `data` in chunks of `step` bytes, pulling after each: { frames, error }. */
function decode(data, awaiting, step) {
  const buf = new ReceiveBuffer();
  const pending = awaiting.map((a) => ({ type: MessageType[a.type], correlationId: a.correlation_id }));
  const frames = [];
  try {
    for (let at = 0; at < data.length; at += step) {
      buf.push(data.subarray(at, at + step));
      for (let r; (r = readResponse(buf, pending[0] ?? null)) !== null; ) {
        frames.push(asVector(r));
        if (r.kind !== 'unsolicited') pending.shift();
      }
    }
  } catch (error) {
    return { frames, error };
  }
  return { frames, error: null };
}

for (const v of load('responses.json')) {
  test(`response vector ${v.id}`, () => {
    const data = input(v);
    const steps = data.length > 100_000 ? [data.length, 65_536, 7] : [data.length || 1, 1];
    for (const step of steps) {
      const { frames, error } = decode(data, v.awaiting, step);
      if (v.expect.error) {
        assert.ok(error, `step ${step}: expected a protocol error ${v.expect.error.reason}, got ${JSON.stringify(frames, (_, x) => (typeof x === 'bigint' ? `${x}` : x))}`);
        assert.equal(error.name, 'ProtocolError', `step ${step}: ${error.stack}`);
        assert.equal(error.reason, v.expect.error.reason, `step ${step}`);
        assert.deepEqual(frames, (v.frames_before ?? []).map(expectedFrame), `step ${step}`);
      } else {
        assert.equal(error, null, `step ${step}: ${error?.stack}`);
        assert.deepEqual(frames, (v.expect.frames ?? []).map(expectedFrame), `step ${step}`);
      }
    }
  });
}

// The client sends payload_length 0 with CREATE_TOPIC and CONSUME (REQ-9), so the vectors that
// carry a payload there are a broker's to read, not this encoder's to produce.
const encodable = load('requests.json').filter(
  (v) => v.expect.frame && (v.expect.frame.type === 'PRODUCE' || payloadOf(v.expect.frame).length === 0),
);

for (const v of encodable) {
  test(`request vector ${v.id}`, () => {
    const f = v.expect.frame;
    const request = makeRequest(MessageType[f.type], f.topic, { timestamp: f.timestamp, payload: payloadOf(f), offset: f.offset ?? 0 });
    const bytes = Buffer.concat(encodeRequest(request, f.correlation_id));
    assert.equal(bytes.toString('hex'), input(v).subarray(0, bytes.length).toString('hex'));
  });
}

test('every kind of request is covered by a vector', () => {
  assert.deepEqual(new Set(encodable.map((v) => v.expect.frame.type)), new Set(['PRODUCE', 'CONSUME', 'CREATE_TOPIC']));
});
