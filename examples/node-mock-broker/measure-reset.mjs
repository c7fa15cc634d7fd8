// How long a reset over the control API takes, against restarting the broker, from a Node.js suite.
// Run from the repository's root: PYTHONPATH=. node examples/node-mock-broker/measure-reset.mjs
// (a measurement, not a test: run it on a quiet machine).

import { MegaClient } from './mega-client.mjs';
import { startBroker } from './mock-broker.mjs';

const RESETS = 200;
const RESTARTS = 10;

function summary(ms) {
  const sorted = [...ms].sort((a, b) => a - b);
  const at = (q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
  return `median ${at(0.5).toFixed(2)} ms, p95 ${at(0.95).toFixed(2)} ms (n=${ms.length})`;
}

const broker = await startBroker();
const resets = [];
for (let i = 0; i < RESETS; i++) {
  // What one test leaves behind: a rule, a topic with messages, a closed connection.
  await broker.api.addFault('consume:delay=1');
  const client = await MegaClient.connect(broker.mega);
  await client.createTopic('t');
  for (let m = 0; m < 10; m++) await client.produce('t', Buffer.from('message'));
  await client.close();
  await broker.api.waitFor({ for: 'connections_open', count: 0 });
  const start = performance.now();
  await broker.api.reset({ closeConnections: true });
  resets.push(performance.now() - start);
}
await broker.stop();

const restarts = [];
for (let i = 0; i < RESTARTS; i++) {
  const start = performance.now();
  const b = await startBroker();
  await b.stop();
  restarts.push(performance.now() - start);
}

console.log(`reset over HTTP (POST /v1/reset): ${summary(resets)}`);
console.log(`restart (start until both ports listen, then stop): ${summary(restarts)}`);
