// A client's side of one MEGA connection, without I/O (the style of h11): requests out, answers in,
// each answer paired with its request. The caller moves the bytes and keeps the clock.
//
//   const conn = new ClientConnection();
//   const { request, data } = conn.send(makeRequest(MessageType.PRODUCE, 'orders', { timestamp, payload }));
//   for (const part of data) socket.write(part);      // the request is now pending
//   socket.on('data', (chunk) => { conn.receiveData(chunk); for (let e; (e = conn.nextEvent()); ) handle(e); });
//   socket.on('end', () => { conn.receiveData(null); ... });
//
// States:
//
//   idle     --send()----------------------------------------------> waiting
//   waiting  --nextEvent(): the last pending 'answer'----------------> idle
//   idle, waiting --nextEvent(): 'unsolicited' or 'end' (after
//                   receiveData(null)), or close() ------------------> closed
//   idle, waiting --nextEvent(): 'violation' ------------------------> broken
//
// Events: { type: 'answer', request, response }; and the endings, each listing the requests left
// unanswered, oldest first: { type: 'unsolicited', unanswered } (CONN-9), { type: 'end',
// unanswered, partialBytes } (EOF; partialBytes > 0 when it came mid-response, CLIENT-14),
// { type: 'violation', error, unanswered } (a ProtocolError, CLIENT-10). In closed and broken
// nothing more is sent and no event comes.
//
// Correlation ids count 1, 2, ... up to 2^31-1 and wrap to 1, never 0 (CLIENT-5, CLIENT-24); an
// id still pending is never reused (CLIENT-4). Each answer must carry the id of the oldest pending
// request (CONN-5, CLIENT-6). A CREATE_TOPIC echo naming another topic is a violation too
// (CLIENT-23).

import { ProtocolError } from './errors.js';
import { INT32_MAX, MESSAGE_TYPE_NAMES } from './limits.js';
import { ReceiveBuffer } from './receive-buffer.js';
import { encodeRequest } from './requests.js';
import { readResponse } from './responses.js';

/** A first-in first-out queue with O(1) shift, for many requests in flight. */
export class Fifo {
  #items = [];
  #head = 0;

  get length() {
    return this.#items.length - this.#head;
  }

  push(item) {
    this.#items.push(item);
  }

  peek() {
    return this.#head < this.#items.length ? this.#items[this.#head] : undefined;
  }

  shift() {
    if (this.#head >= this.#items.length) return undefined;
    const item = this.#items[this.#head];
    this.#items[this.#head] = undefined;
    this.#head += 1;
    if (this.#head >= 1024 && this.#head * 2 >= this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    return item;
  }

  /** Remove and return every item, oldest first. */
  drain() {
    const items = this.#items.slice(this.#head);
    this.#items = [];
    this.#head = 0;
    return items;
  }
}

/** `PRODUCE (request 7)`: a request as messages name it. */
export function describe(request) {
  return `${MESSAGE_TYPE_NAMES[request.type]} (request ${request.correlationId})`;
}

export class ClientConnection {
  #nextId;
  #pending = new Fifo();
  #buf = new ReceiveBuffer();
  #eof = false;
  #state = 'idle';
  #limits;

  constructor({ firstCorrelationId = 1, maxPayloadBytes, maxTopicBytes } = {}) {
    if (!Number.isInteger(firstCorrelationId) || firstCorrelationId < 1 || firstCorrelationId > INT32_MAX) {
      throw new RangeError(`firstCorrelationId must be 1..${INT32_MAX}, not ${firstCorrelationId}`);
    }
    this.#nextId = firstCorrelationId;
    this.#limits = { maxPayloadBytes, maxTopicBytes };
  }

  /** 'idle', 'waiting', 'closed' or 'broken'. */
  get state() {
    return this.#state;
  }

  get open() {
    return this.#state === 'idle' || this.#state === 'waiting';
  }

  /** The correlation id the next request will carry. */
  get nextCorrelationId() {
    return this.#nextId;
  }

  /** How many requests were sent and not answered yet. */
  get pending() {
    return this.#pending.length;
  }

  /** The request the next answer must be for (CONN-5), or undefined. */
  get oldestPending() {
    return this.#pending.peek();
  }

  /**
   * Number `request` (from makeRequest) and return `{ request, data }`: the numbered request,
   * now pending, and the Buffers to write, in order. Throws Error once the connection has ended.
   */
  send(request) {
    if (!this.open || this.#eof) throw new Error('cannot send: the connection has ended');
    const correlationId = this.#nextId;
    const oldest = this.#pending.peek();
    // Ids are handed out in order, so the next one meets a pending one only when every id is in
    // flight; it is then the oldest's (CLIENT-4).
    if (oldest !== undefined && oldest.correlationId === correlationId) {
      throw new Error(`cannot send: all ${INT32_MAX} correlation ids are pending`);
    }
    const data = encodeRequest(request, correlationId);
    const numbered = Object.freeze({ ...request, correlationId });
    this.#pending.push(numbered);
    this.#nextId = correlationId >= INT32_MAX ? 1 : correlationId + 1;
    this.#state = 'waiting';
    return { request: numbered, data };
  }

  /** Add bytes received; null means the broker closed its side (EOF). */
  receiveData(chunk) {
    if (this.#eof || !this.open) return;
    if (chunk === null) this.#eof = true;
    else this.#buf.push(chunk);
  }

  /** The next event, or null until more bytes arrive. */
  nextEvent() {
    if (!this.open) return null;
    const oldest = this.#pending.peek() ?? null;
    let response;
    try {
      response = readResponse(this.#buf, oldest, this.#limits);
      if (response !== null && response.kind === 'create_topic' && response.topic !== oldest.topic) {
        throw new ProtocolError(
          `CREATE_TOPIC ${JSON.stringify(oldest.topic)} was answered with the topic ${JSON.stringify(response.topic)}`,
          { reason: 'topic-echo-mismatch', correlationId: response.correlationId },
        );
      }
    } catch (error) {
      if (!(error instanceof ProtocolError)) throw error;
      this.#buf.clear();
      this.#state = 'broken';
      return { type: 'violation', error, unanswered: this.#pending.drain() };
    }
    if (response === null) {
      if (!this.#eof) return null;
      const partialBytes = this.#buf.clear();
      this.#state = 'closed';
      return { type: 'end', unanswered: this.#pending.drain(), partialBytes };
    }
    if (response.kind === 'unsolicited') {
      this.#buf.clear();
      this.#state = 'closed';
      return { type: 'unsolicited', unanswered: this.#pending.drain() };
    }
    const request = this.#pending.shift();
    if (this.#pending.length === 0) this.#state = 'idle';
    return { type: 'answer', request, response };
  }

  /** End the connection from this side (a timeout, a failed write, close). Returns the requests left unanswered. */
  close() {
    if (this.open) this.#state = 'closed';
    this.#buf.clear();
    return this.#pending.drain();
  }
}

