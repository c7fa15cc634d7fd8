// A node:test suite that uses the MEGA mock broker as its test double:
// one broker for the file, a reset before each test, a fault for one test only, and assertions
// on the exact bytes the broker received. Run: node --test examples/node-mock-broker/broker.test.mjs

import { after, before, beforeEach, test } from 'node:test';
import assert from 'node:assert/strict';

import { MegaClient, MegaError } from './mega-client.mjs';
import { startBroker } from './mock-broker.mjs';

let broker;

before(async () => {
  broker = await startBroker();
});

after(async () => {
  await broker?.stop();
});

beforeEach(async () => {
  // Milliseconds, where restarting the broker would cost a second: every test starts from nothing.
  await broker.api.reset({ closeConnections: true });
});

const hex = (text) => Buffer.from(text, 'utf8').toString('hex');

test('the broker receives exactly the bytes the client sends', async () => {
  const client = await MegaClient.connect(broker.mega);
  assert.equal(await client.createTopic('orders', 1), 'orders');
  assert.equal(await client.produce('orders', Buffer.from('hello'), 2), 0);
  await client.close();
  await broker.api.waitFor({ for: 'connections_closed', at_least: 1 });

  const [conn] = await broker.api.connections();
  // Written by hand from docs/PROTOCOL.md 3.1, not by the client's own encoder.
  const createTopic = '00000001' + '03' + '00000006' + hex('orders') + '0000000000000001' + '00000000';
  const produce = '00000002' + '01' + '00000006' + hex('orders') + '0000000000000002' + '00000005' + hex('hello');
  assert.equal(conn.received.hex, createTopic + produce);
  assert.deepEqual(
    conn.requests.map((r) => [r.type, r.correlation_id, r.answer.kind]),
    [['CREATE_TOPIC', 1, 'create_topic'], ['PRODUCE', 2, 'produce']],
  );
  assert.equal(conn.close_reason, 'peer closed');

  const { messages } = await broker.api.get('/topics/orders/messages');
  assert.equal(Buffer.from(messages[0].payload.base64, 'base64').toString(), 'hello');
  assert.equal(messages[0].timestamp, 2);
});

test('a fault for this test only: one PRODUCE fails with RESOURCE_EXHAUSTED, the retry succeeds', async () => {
  const fault = await broker.api.addFault('produce:error=RESOURCE_EXHAUSTED:once');
  const client = await MegaClient.connect(broker.mega);
  await client.createTopic('jobs');
  await assert.rejects(client.produce('jobs', Buffer.from('a')), (err) => err instanceof MegaError && err.code === 9);
  assert.equal(await client.produce('jobs', Buffer.from('a')), 0); // the rule fired once: the retry is stored
  await client.close();

  const { fired, matched } = await broker.api.get(`/faults/${fault.id}`);
  assert.deepEqual([fired, matched], [1, 2]);
  const [conn] = await broker.api.connections();
  assert.deepEqual(conn.faults.map((f) => [f.rule, f.correlation_id]), [['produce:error=RESOURCE_EXHAUSTED:once', 2]]);
  assert.equal(conn.requests[1].answer.error, 'RESOURCE_EXHAUSTED');
});

test('the reset before each test left nothing behind', async () => {
  assert.deepEqual(await broker.api.get('/topics'), { topics: [] });
  assert.deepEqual(await broker.api.get('/faults'), { faults: [] });
  assert.deepEqual((await broker.api.get('/connections')).connections, []);
});

test('waiting for the broker instead of sleeping: a silent broker, then a client-side timeout', async () => {
  await broker.api.addFault('consume:silent');
  const client = await MegaClient.connect(broker.mega);
  await client.createTopic('slow');
  await client.produce('slow', Buffer.from('x'));
  const pending = client.consume('slow', 0); // never answered
  await broker.api.waitFor({ for: 'requests', at_least: 3 }); // the broker has the CONSUME: no sleep needed
  const [conn] = await broker.api.connections();
  assert.equal(conn.requests[2].type, 'CONSUME');
  assert.equal(conn.requests[2].answer, null);
  pending.catch(() => {}); // the close below rejects it
  await client.close();
});
