// MegaClient: a promise-based MEGA client over one TCP connection (node:net), many requests in
// flight at once. The protocol itself (framing, matching, endings) is ClientConnection's, without
// I/O; this module adds the socket, the clock and the retry rules around it.

import fs from 'node:fs';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';

import { ClientConnection, describe, Fifo } from './connection.js';
import {
  BrokerError,
  ConnectionClosedByBroker,
  ConnectionError,
  ProtocolError,
  TimeoutError,
  UsageError,
  ValidationError,
} from './errors.js';
import { DEFAULT_PORT, INT32_MAX, INT32_MIN, INT64_MAX, INT64_MIN, MAX_PAYLOAD_BYTES, MessageType, topicProblem } from './limits.js';
import { makeRequest } from './requests.js';
import { backoffMs, mayRetry, retryPolicy } from './retry.js';

/** Bytes handed to the socket per batch before waiting for it to take them (backpressure). */
const WRITE_BATCH_BYTES = 256 * 1024;
/** How long a closed socket waits for the broker's FIN before it is destroyed. */
const LINGER_MS = 2000;

function unsent(why) {
  return new ConnectionError(`${why} before the request was written`, { requestSent: false });
}

/**
 * The request timeout's one timer (CLIENT-11), for the oldest request in flight. It is restarted
 * for every answer, so restarting only moves the deadline; the timer, when it fires before the
 * deadline, sets itself again for it.
 */
class Clock {
  #timeoutMs;
  #expired;
  #deadline = 0;
  #timer = null;

  constructor(timeoutMs, expired) {
    this.#timeoutMs = timeoutMs;
    this.#expired = expired;
  }

  restart() {
    this.#deadline = performance.now() + this.#timeoutMs;
    if (this.#timer === null) this.#arm(this.#timeoutMs);
  }

  stop() {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
  }

  #arm(ms) {
    this.#timer = setTimeout(() => this.#fire(), Math.max(1, Math.ceil(ms)));
  }

  #fire() {
    this.#timer = null;
    const left = this.#deadline - performance.now();
    if (left > 0) this.#arm(left);
    else this.#expired();
  }
}

/**
 * One TCP connection: a socket around a ClientConnection.
 *
 * Calls wait in a queue until the socket takes more bytes; then each request is numbered,
 * written, and kept by correlation id until its answer comes. Requests made in the same tick go
 * out in one write. Time queued does not count against the timeout, and a request still queued
 * when the connection fails was never sent (requestSent false).
 */
class Link {
  #socket;
  #protocol;
  #timeoutMs;
  #log;
  #queue = new Fifo();
  #inFlight = new Map();
  #flushScheduled = false;
  #lost = null;
  #clock;
  /** Why the link is no longer usable (the error of its first failed request), or null. */
  failure = null;

  constructor(socket, protocol, timeoutMs, log) {
    this.#socket = socket;
    this.#protocol = protocol;
    this.#timeoutMs = timeoutMs;
    this.#log = log;
    this.#clock = new Clock(timeoutMs, () => this.#timedOut());
    socket.setNoDelay(true); // CLIENT-22: pipelined small requests go out at once
    socket.on('data', (chunk) => this.#received(chunk));
    socket.on('end', () => this.#received(null));
    socket.on('error', (error) => {
      this.#lost ??= error;
    });
    socket.on('close', () => {
      this.#received(null); // the EOF: the requests still pending fail (CLIENT-14)
      if (this.failure === null) {
        // Only reached when the stream ended with nothing pending; any request left fails all the same.
        this.#shut(this.#protocol.close(), (request) =>
          request === null ? unsent('the connection was closed') : new ConnectionError(`the connection closed before the answer to ${describe(request)}`),
        );
      }
    });
    socket.on('drain', () => this.#flush());
    socket.lastBytes = (chunk) => this.#received(chunk);
  }

  get alive() {
    return this.failure === null && this.#protocol.open && !this.#socket.destroyed;
  }

  get nextCorrelationId() {
    return this.#protocol.nextCorrelationId;
  }

  /** Send `request` (from makeRequest); resolves with `{ request, response }` (the numbered request). */
  submit(request) {
    return new Promise((resolve, reject) => {
      if (!this.alive) {
        reject(unsent('the connection is closed'));
        return;
      }
      this.#queue.push({ request, resolve, reject });
      if (!this.#flushScheduled) {
        this.#flushScheduled = true;
        process.nextTick(() => {
          this.#flushScheduled = false;
          this.#flush();
        });
      }
    });
  }

  /** Close at once; each request on the link is rejected with `errorFor(request)` (null: never written). */
  fail(errorFor) {
    this.#shut(this.#protocol.close(), errorFor);
    this.#socket.destroy();
  }

  /** Close gracefully (FIN after what was written); requests still on the link are rejected with a UsageError. */
  close() {
    this.#shut(this.#protocol.close(), (request) =>
      request === null
        ? new UsageError('the client was closed before the request was written')
        : new UsageError(`the client was closed while ${describe(request)} was in flight`),
    );
    const socket = this.#socket;
    if (socket.destroyed) return;
    socket.end();
    const timer = setTimeout(() => socket.destroy(), LINGER_MS);
    timer.unref();
    socket.once('close', () => clearTimeout(timer));
  }

  #flush() {
    const socket = this.#socket;
    const queue = this.#queue;
    if (queue.length === 0 || !this.alive || socket.writableNeedDrain) return;
    socket.cork();
    try {
      while (queue.length > 0 && this.alive && socket.writableLength < WRITE_BATCH_BYTES) {
        const call = queue.shift();
        let sent;
        try {
          sent = this.#protocol.send(call.request);
        } catch (error) {
          call.reject(new UsageError(`cannot send: ${error.message}`));
          continue;
        }
        this.#inFlight.set(sent.request.correlationId, call);
        if (this.#inFlight.size === 1) this.#clock.restart(); // the oldest in flight: its clock starts
        for (const part of sent.data) socket.write(part);
      }
    } finally {
      socket.uncork();
    }
    if (queue.length > 0 && this.alive && !socket.writableNeedDrain) setImmediate(() => this.#flush());
  }

  #received(chunk) {
    this.#protocol.receiveData(chunk);
    let answered = false;
    for (let event; (event = this.#protocol.nextEvent()) !== null; ) {
      if (event.type !== 'answer') {
        this.#ended(event);
        return;
      }
      const call = this.#inFlight.get(event.request.correlationId);
      this.#inFlight.delete(event.request.correlationId);
      call.resolve(event);
      answered = true;
    }
    if (answered) {
      if (this.#inFlight.size > 0) this.#clock.restart(); // the next one's turn
      else this.#clock.stop();
    }
  }

  /** The broker ended the connection with `event` ('end', 'unsolicited' or 'violation'). */
  #ended(event) {
    const { unanswered } = event;
    const oldest = unanswered[0] ?? null;
    const lost = this.#lost;
    let errorFor;
    if (event.type === 'violation') {
      const { message, reason, correlationId } = event.error;
      errorFor = (request) =>
        request === null ? unsent('a protocol error closed the connection') : new ProtocolError(message, { reason, correlationId });
      if (oldest === null) this.#log(`protocol error on an idle connection: ${message}; closing it`);
    } else if (event.type === 'unsolicited') {
      errorFor = (request) =>
        request === null
          ? unsent('the broker closed the connection')
          : new ConnectionClosedByBroker(`the broker closed the connection (unsolicited frame) before answering ${describe(request)}`);
      if (oldest === null) this.#log('the broker closed the idle connection (unsolicited frame)');
    } else {
      errorFor = (request) => {
        if (request === null) return unsent('the connection ended');
        if (lost !== null) {
          return new ConnectionError(`connection lost (${lost.code ?? lost.message}) before the answer to ${describe(request)}`, {
            cause: lost,
          });
        }
        if (request === oldest && event.partialBytes > 0) {
          return new ConnectionError(
            `the broker closed the connection mid-response, after ${event.partialBytes} bytes of the answer to ${describe(request)}`,
          );
        }
        return new ConnectionError(`the broker closed the connection before answering ${describe(request)}`);
      };
    }
    this.#shut(unanswered, errorFor);
    this.#socket.destroy();
  }

  #timedOut() {
    const oldest = this.#protocol.oldestPending;
    if (oldest === undefined || this.failure !== null) return;
    const why = `the connection was closed after ${describe(oldest)} timed out`;
    this.fail((request) => {
      if (request === oldest) return new TimeoutError(`no answer to ${describe(oldest)} within ${this.#timeoutMs} ms`);
      return request === null ? unsent(why) : new ConnectionError(why);
    });
  }

  /** The link is over: reject the requests written and left unanswered, then every queued call. */
  #shut(unanswered, errorFor) {
    if (this.failure === null) this.failure = errorFor(unanswered[0] ?? null);
    this.#clock.stop();
    for (const request of unanswered) {
      const call = this.#inFlight.get(request.correlationId);
      this.#inFlight.delete(request.correlationId);
      call?.reject(errorFor(request));
    }
    for (const call of this.#queue.drain()) call.reject(errorFor(null));
  }
}

/** The most bytes read from a socket that a failed write is destroying (its receive buffer's worth). */
const SALVAGE_BYTES = 16 * 1024 * 1024;

/**
 * A socket that, when an error destroys it, first reads what the kernel had already received.
 *
 * A write that fails (the broker reset the connection after answering) makes node destroy the
 * socket at once, closing it before the answers already in its receive buffer are read: requests
 * that were answered would fail. So `_destroy` reads them first, synchronously, and hands them
 * to `lastBytes` (CLIENT-14 fails only the requests left unanswered).
 */
class Socket extends net.Socket {
  lastBytes = null;

  _destroy(error, callback) {
    if (error && this.lastBytes !== null) readWhatIsLeft(this._handle?.fd, this.lastBytes);
    super._destroy(error, callback);
  }
}

function readWhatIsLeft(fd, deliver) {
  if (!Number.isInteger(fd) || fd < 0) return;
  const buf = Buffer.allocUnsafe(256 * 1024);
  for (let total = 0; total < SALVAGE_BYTES; ) {
    let n;
    try {
      n = fs.readSync(fd, buf, 0, buf.length, null);
    } catch {
      return; // EAGAIN: nothing more is there; ECONNRESET: it ends here
    }
    if (n === 0) return;
    total += n;
    deliver(Buffer.from(buf.subarray(0, n)));
  }
}

/** Open a TCP connection within `timeoutMs`; `made(socket)` turns it into what is returned. */
function openSocket(host, port, timeoutMs, made) {
  const where = `${host}:${port}`;
  return new Promise((resolve, reject) => {
    const socket = new Socket();
    socket.connect({ host, port });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new TimeoutError(`connecting to ${where} took over ${timeoutMs} ms`, { requestSent: false }));
    }, timeoutMs);
    const failed = (error) => {
      clearTimeout(timer);
      socket.destroy();
      reject(new ConnectionError(`cannot connect to ${where}: ${error.code ?? error.message}`, { requestSent: false, cause: error }));
    };
    socket.once('error', failed);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.removeListener('error', failed);
      resolve(made(socket)); // synchronously: the link's own listeners are on before any event
    });
  });
}

function checkTopic(topic) {
  const problem = topicProblem(topic);
  if (problem !== null) throw new ValidationError(problem);
  return topic;
}

const LONE_SURROGATE = /\p{Surrogate}/u;

function payloadBytes(payload) {
  let data;
  if (typeof payload === 'string') {
    if (LONE_SURROGATE.test(payload)) throw new ValidationError('payload text has a lone surrogate: it cannot be encoded as UTF-8');
    data = Buffer.from(payload, 'utf8');
  } else if (payload instanceof Uint8Array) {
    data = Buffer.from(payload); // a copy: the caller may reuse its buffer while the request waits
  } else {
    throw new ValidationError(`payload must be a string, a Buffer or a Uint8Array, not ${payload === null ? 'null' : typeof payload}`);
  }
  if (data.length > MAX_PAYLOAD_BYTES) {
    throw new ValidationError(`payload is ${data.length} bytes, over the limit of ${MAX_PAYLOAD_BYTES} (1 MiB)`);
  }
  return data;
}

function checkOffset(offset) {
  if (!Number.isInteger(offset) || offset < INT32_MIN || offset > INT32_MAX) {
    throw new ValidationError(`offset must be an integer that fits a signed 32-bit integer, not ${offset}`);
  }
  return offset;
}

function checkTimestamp(timestamp) {
  if (timestamp === undefined) return BigInt(Date.now()); // CLIENT-18: the wall clock, in ms
  if (typeof timestamp === 'number' && Number.isSafeInteger(timestamp)) timestamp = BigInt(timestamp);
  if (typeof timestamp !== 'bigint' || timestamp < INT64_MIN || timestamp > INT64_MAX) {
    throw new ValidationError(`timestamp must be a BigInt (or safe integer) that fits a signed 64-bit integer, not ${timestamp}`);
  }
  return timestamp;
}

function positive(name, value) {
  if (!Number.isFinite(value) || value <= 0) throw new RangeError(`${name} must be a positive number of milliseconds, not ${value}`);
  return value;
}

/**
 * A MEGA client. Calls may be made concurrently: they share one connection (pipelining), each
 * answer going to its caller.
 *
 *   const client = new MegaClient({ host: 'localhost', port: 8080, timeoutMs: 5000 });
 *   await client.connect();
 *   await client.createTopic('orders');
 *   const { offset } = await client.produce('orders', 'hello');
 *   const { payload, nextOffset, timestamp } = await client.consume('orders', offset);
 *   await client.close();
 *
 * The README describes the timeouts, the retries and what each failure means.
 */
export class MegaClient {
  #host;
  #port;
  #timeoutMs;
  #connectTimeoutMs;
  #retry;
  #produceDelivery;
  #log;
  #state = 'new'; // 'new' (before connect), 'open' (the connection itself may be down), 'closed'
  #link = null;
  #linking = null;
  #firstCorrelationId;

  constructor({
    host = 'localhost',
    port = DEFAULT_PORT,
    timeoutMs = 10_000,
    connectTimeoutMs = timeoutMs,
    retry = {},
    produceDelivery = 'at-most-once',
    firstCorrelationId = 1,
    log = () => {},
  } = {}) {
    if (typeof host !== 'string' || host === '') throw new RangeError(`host must be a non-empty string, not ${host}`);
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new RangeError(`port must be 0..65535, not ${port}`);
    if (produceDelivery !== 'at-most-once' && produceDelivery !== 'at-least-once') {
      throw new RangeError(`produceDelivery must be 'at-most-once' or 'at-least-once', not ${produceDelivery}`);
    }
    if (!Number.isInteger(firstCorrelationId) || firstCorrelationId < 1 || firstCorrelationId > INT32_MAX) {
      throw new RangeError(`firstCorrelationId must be 1..${INT32_MAX}, not ${firstCorrelationId}`);
    }
    this.#host = host;
    this.#port = port;
    this.#timeoutMs = positive('timeoutMs', timeoutMs);
    this.#connectTimeoutMs = positive('connectTimeoutMs', connectTimeoutMs);
    this.#retry = retryPolicy(retry);
    this.#produceDelivery = produceDelivery;
    this.#firstCorrelationId = firstCorrelationId;
    this.#log = log;
  }

  get host() {
    return this.#host;
  }

  get port() {
    return this.#port;
  }

  /** True while a connection to the broker is open. */
  get connected() {
    return this.#link !== null && this.#link.alive;
  }

  /** Open the connection now, retrying refused and reset connections (not timeouts) with backoff. */
  async connect() {
    if (this.#state === 'open' && this.connected) throw new UsageError('the client is already connected');
    const previous = this.#state;
    this.#state = 'open';
    try {
      for (let attempt = 1; ; attempt += 1) {
        try {
          await this.#open();
          return;
        } catch (error) {
          if (this.#state !== 'open') throw new UsageError('the client was closed while connecting', { cause: error });
          if (!mayRetry(error, null, this.#produceDelivery) || attempt >= this.#retry.attempts) throw error;
          await this.#backoff(error, attempt);
        }
      }
    } catch (error) {
      if (this.#state === 'open' && !this.connected) this.#state = previous;
      throw error;
    }
  }

  /** Close the connection (FIN). Idempotent. Calls still waiting are rejected with UsageError. */
  async close() {
    this.#state = 'closed';
    this.#link?.close(); // the link is kept: a later connect() goes on numbering where it stopped
  }

  /** Create `topic`; resolves with `{ topic, timestamp, correlationId }`, the topic as the broker echoed it. */
  async createTopic(topic) {
    this.#requireOpen();
    const request = makeRequest(MessageType.CREATE_TOPIC, checkTopic(topic), { timestamp: checkTimestamp(undefined) });
    const { response } = await this.#call(request);
    return { topic: response.topic, timestamp: response.timestamp, correlationId: response.correlationId };
  }

  /**
   * Append `payload` (a Buffer, a Uint8Array, or a string sent as UTF-8) to `topic`; resolves with
   * `{ topic, offset, timestamp, correlationId }`. `options.timestamp` (BigInt ms) replaces the
   * wall clock.
   */
  async produce(topic, payload, { timestamp } = {}) {
    this.#requireOpen();
    const request = makeRequest(MessageType.PRODUCE, checkTopic(topic), {
      timestamp: checkTimestamp(timestamp),
      payload: payloadBytes(payload),
    });
    const { response } = await this.#call(request);
    return { topic, offset: response.offset, timestamp: response.timestamp, correlationId: response.correlationId };
  }

  /**
   * Read the message at `offset` of `topic`; resolves with
   * `{ topic, offset, payload, nextOffset, timestamp, correlationId }` (payload a Buffer,
   * timestamp a BigInt: the one its PRODUCE carried).
   */
  async consume(topic, offset) {
    this.#requireOpen();
    const request = makeRequest(MessageType.CONSUME, checkTopic(topic), { timestamp: checkTimestamp(undefined), offset: checkOffset(offset) });
    const { response } = await this.#call(request);
    return {
      topic,
      offset,
      payload: response.payload,
      nextOffset: response.nextOffset,
      timestamp: response.timestamp,
      correlationId: response.correlationId,
    };
  }

  #requireOpen() {
    if (this.#state === 'new') throw new UsageError('the client is not connected: call connect() first');
    if (this.#state === 'closed') throw new UsageError('the client is closed');
  }

  async #call(request) {
    for (let attempt = 1; ; attempt += 1) {
      try {
        // A live link takes the request in this very call, so calls made one after the other
        // are in flight together, in order.
        const link = this.#link !== null && this.#link.alive ? this.#link : await this.#open();
        const answer = await link.submit(request);
        if (answer.response.kind === 'error') {
          throw new BrokerError(answer.response.errorCode, { correlationId: answer.response.correlationId, request: describe(answer.request) });
        }
        return answer;
      } catch (error) {
        if (this.#state === 'closed' && (error instanceof ConnectionError || error instanceof TimeoutError)) {
          throw new UsageError('the client was closed during the call', { cause: error });
        }
        if (!mayRetry(error, request, this.#produceDelivery) || attempt >= this.#retry.attempts) throw error;
        await this.#backoff(error, attempt);
        this.#requireOpen();
      }
    }
  }

  async #backoff(error, attempt) {
    const delay = backoffMs(this.#retry, attempt);
    this.#log(`${error.message}; retrying in ${Math.round(delay)} ms`);
    await sleep(delay);
  }

  /** One try at connecting, shared by every caller waiting for the connection. */
  #open() {
    this.#linking ??= this.#openOnce().finally(() => {
      this.#linking = null;
    });
    return this.#linking;
  }

  async #openOnce() {
    // A new connection goes on numbering where the last one stopped (CLIENT-24).
    const firstCorrelationId = this.#link?.nextCorrelationId ?? this.#firstCorrelationId;
    if (this.#link !== null) this.#log(`reconnecting to ${this.#host}:${this.#port} (${this.#link.failure?.message ?? 'closed'})`);
    const link = await openSocket(
      this.#host,
      this.#port,
      this.#connectTimeoutMs,
      (socket) => new Link(socket, new ClientConnection({ firstCorrelationId }), this.#timeoutMs, this.#log),
    );
    if (this.#state !== 'open') {
      link.fail(() => new UsageError('the client is closed'));
      throw new UsageError('the client was closed while connecting');
    }
    this.#link = link;
    return link;
  }
}
