#!/usr/bin/env node
// The conformance driver of this client (docs/CONFORMANCE.md section 1): JSON commands in, one per
// line on stdin; one JSON reply per command on stdout; logs on stderr. It maps the client's own
// behaviour and adds none: no validation, retry or reconnect of its own.
//
//   python -m conformance --driver "node examples/node-client/driver.js"

import readline from 'node:readline';

import { stringify } from './lib/exact-json.js';
import {
  BrokerError,
  ConnectionError,
  MegaClient,
  ProtocolError,
  TimeoutError,
  UsageError,
} from './mega-client.js';

const log = (message) => process.stderr.write(`[node-client] ${message}\n`);

class Unsupported extends Error {}

let client = null;

function need() {
  if (client === null) throw new UsageError('not connected: no connect command yet');
  return client;
}

/** The single requests, also the ones a pipeline carries. Each calls the client before it awaits. */
const requests = {
  async create_topic(c) {
    const created = await need().createTopic(c.topic);
    return { topic: created.topic };
  },
  async produce(c) {
    const produced = await need().produce(c.topic, Buffer.from(String(c.payload), 'base64'));
    return { offset: produced.offset };
  },
  async consume(c) {
    const m = await need().consume(c.topic, c.offset);
    // timestamp is a BigInt: exact-json writes it as the exact i64, never rounded to a double.
    return { payload: m.payload.toString('base64'), next_offset: m.nextOffset, timestamp: m.timestamp };
  },
};

const ops = {
  ...requests,
  async connect(c) {
    if (client !== null) await client.close();
    client = null;
    const firstCorrelationId = c.first_correlation_id ?? 1; // lets the suite test the counter's wrap
    const made = new MegaClient({ host: c.host, port: c.port, timeoutMs: c.timeout_ms, firstCorrelationId, log });
    client = made;
    await made.connect();
    return {};
  },
  async close() {
    if (client !== null) await client.close();
    return {};
  },
  async pipeline(c) {
    need();
    if (!Array.isArray(c.requests)) throw new UsageError('pipeline: requests must be a list');
    // Every call is made before any is awaited: all are in flight together, in this order.
    const calls = c.requests.map((r) => {
      const run = r !== null && typeof r === 'object' ? requests[r.op] : undefined;
      return run === undefined ? Promise.reject(new Unsupported(`pipeline: unknown request op ${JSON.stringify(r?.op)}`)) : run(r);
    });
    const settled = await Promise.allSettled(calls);
    return {
      results: settled.map((s) => (s.status === 'fulfilled' ? { ok: true, result: s.value } : { ok: false, error: errorOf(s.reason) })),
    };
  },
};

function errorOf(e) {
  const message = String(e?.message ?? e);
  if (e instanceof BrokerError) return { type: 'broker', code: e.codeName, message };
  if (e instanceof TimeoutError) return { type: 'timeout', message };
  if (e instanceof ConnectionError) return { type: 'connection', message };
  if (e instanceof ProtocolError) return { type: 'protocol', message };
  if (e instanceof Unsupported) return { type: 'unsupported', message };
  if (!(e instanceof UsageError)) log(`unexpected error: ${e?.stack ?? e}`);
  return { type: 'usage', message };
}

function write(line) {
  return new Promise((resolve) => {
    process.stdout.write(`${line}\n`, () => resolve()); // the callback: flushed to the pipe
  });
}

async function serve(line) {
  let cmd;
  try {
    cmd = JSON.parse(line);
  } catch (e) {
    log(`ignored a line that is not JSON: ${e.message}`);
    return;
  }
  if (cmd === null || typeof cmd !== 'object' || !Number.isInteger(cmd.id)) {
    log('ignored a command without an integer id');
    return;
  }
  let reply;
  const op = Object.hasOwn(ops, cmd.op) ? ops[cmd.op] : undefined;
  if (op === undefined) {
    reply = { ok: false, error: { type: 'unsupported', message: `unknown op ${JSON.stringify(cmd.op)}` } };
  } else {
    try {
      reply = { ok: true, result: await op(cmd) };
    } catch (e) {
      reply = { ok: false, error: errorOf(e) };
    }
  }
  await write(stringify({ id: cmd.id, ...reply }));
}

// Never exit on an error: a failure becomes a reply, anything else is logged.
process.on('uncaughtException', (e) => log(`uncaught: ${e?.stack ?? e}`));
process.on('unhandledRejection', (e) => log(`unhandled rejection: ${e?.stack ?? e}`));

// One command at a time, in order: the runner sends the next one only after the reply.
let chain = Promise.resolve();
const input = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
input.on('line', (line) => {
  chain = chain.then(() => serve(line)).catch((e) => log(`serve: ${e?.stack ?? e}`));
});
input.on('close', () => {
  chain.then(async () => {
    if (client !== null) await client.close();
    process.exit(0);
  });
});
