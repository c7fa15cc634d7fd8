// A tiny MEGA client: the "client under test" of this example. Sequential (one request at a time),
// written from docs/PROTOCOL.md sections 3 and 4. A real client author tests their own client instead.

import net from 'node:net';

const PRODUCE = 0x01;
const CONSUME = 0x02;
const CREATE_TOPIC = 0x03;

/** A MEGA error answer: `code` is the protocol's error code (9 is RESOURCE_EXHAUSTED). */
export class MegaError extends Error {
  constructor(code) {
    super(`MEGA error code ${code}`);
    this.code = code;
  }
}

/** A request frame: header, [offset], payload_length, payload (REQ-1, REQ-4..7). */
export function encodeRequest(cid, type, topic, timestamp, payload = Buffer.alloc(0), offset = null) {
  const name = Buffer.from(topic, 'utf8');
  const head = Buffer.alloc(9);
  head.writeInt32BE(cid, 0);
  head.writeUInt8(type, 4);
  head.writeInt32BE(name.length, 5);
  const ts = Buffer.alloc(8);
  ts.writeBigInt64BE(BigInt(timestamp));
  const parts = [head, name, ts];
  if (offset !== null) {
    const off = Buffer.alloc(4);
    off.writeInt32BE(offset);
    parts.push(off);
  }
  const len = Buffer.alloc(4);
  len.writeInt32BE(payload.length);
  parts.push(len, payload);
  return Buffer.concat(parts);
}

export class MegaClient {
  static connect({ host, port }) {
    return new Promise((resolve, reject) => {
      const socket = net.createConnection({ host, port }, () => resolve(new MegaClient(socket)));
      socket.once('error', reject);
    });
  }

  constructor(socket) {
    this.socket = socket;
    this.buffer = Buffer.alloc(0);
    this.nextCid = 1;
    this.waiting = null; // { need(buffer) -> frame length or 0, resolve, reject }
    socket.on('data', (chunk) => {
      this.buffer = Buffer.concat([this.buffer, chunk]);
      this.#deliver();
    });
    socket.on('close', () => this.waiting?.reject(new Error('connection closed')));
  }

  #deliver() {
    if (!this.waiting) return;
    const size = this.waiting.need(this.buffer);
    if (!size) return;
    const frame = this.buffer.subarray(0, size);
    this.buffer = this.buffer.subarray(size);
    const { resolve } = this.waiting;
    this.waiting = null;
    resolve(frame);
  }

  /** Send one request and read its answer; `bodySize(buffer)` says how long a success frame is once enough arrived. */
  #request(frame, bodySize) {
    return new Promise((resolve, reject) => {
      const need = (b) => {
        if (b.length < 5) return 0;
        if (b.readInt8(4) === 0) return b.length >= 6 ? 6 : 0; // error answer (RESP-3)
        const size = bodySize(b);
        return size && b.length >= size ? size : 0;
      };
      this.waiting = { need, resolve, reject };
      this.socket.write(frame);
      this.#deliver();
    }).then((answer) => {
      if (answer.readInt8(4) === 0) throw new MegaError(answer.readInt8(5));
      return answer;
    });
  }

  async createTopic(topic, timestamp = 0) {
    const cid = this.nextCid++;
    const answer = await this.#request(encodeRequest(cid, CREATE_TOPIC, topic, timestamp), (b) =>
      b.length >= 15 ? 15 + b.readUInt16BE(13) : 0);
    return answer.subarray(15).toString('utf8');
  }

  /** Store `payload`; resolves to its offset. */
  async produce(topic, payload, timestamp = 0) {
    const cid = this.nextCid++;
    const answer = await this.#request(encodeRequest(cid, PRODUCE, topic, timestamp, payload), () => 17);
    return answer.readInt32BE(13);
  }

  /** Read the message at `offset`: { timestamp, nextOffset, payload }. */
  async consume(topic, offset) {
    const cid = this.nextCid++;
    const answer = await this.#request(encodeRequest(cid, CONSUME, topic, 0, Buffer.alloc(0), offset), (b) =>
      b.length >= 21 ? 21 + b.readInt32BE(17) : 0);
    return { timestamp: answer.readBigInt64BE(5), nextOffset: answer.readInt32BE(13), payload: answer.subarray(21) };
  }

  close() {
    return new Promise((resolve) => this.socket.end(resolve));
  }
}
