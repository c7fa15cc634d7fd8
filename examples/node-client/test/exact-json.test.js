import assert from 'node:assert/strict';
import { test } from 'node:test';

import { stringify } from '../lib/exact-json.js';

test('BigInt timestamps are written exactly, beyond 2^53 and at the i64 limits', () => {
  for (const t of [0n, -1n, 2n ** 53n + 1n, 2n ** 63n - 1n, -(2n ** 63n)]) {
    assert.equal(stringify({ timestamp: t }), `{"timestamp":${t}}`);
  }
});

test('everything else is what JSON.stringify writes', () => {
  const value = { id: 7, ok: false, error: { type: 'usage', message: 'a "quoted"\n\u2028 \ud800 text' }, list: [1, null, 'x'], skip: undefined };
  assert.equal(stringify(value), JSON.stringify(value));
  assert.deepEqual(JSON.parse(stringify(value)), JSON.parse(JSON.stringify(value)));
});
