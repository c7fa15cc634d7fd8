// When a call is tried again (CLIENT-13, CLIENT-20), and how long to wait first.
//
// Retried, after a ConnectionError only:
// - connecting (refused, reset);
// - CONSUME and CREATE_TOPIC, whether or not the request had been sent: reading a message twice
//   is harmless, and a second CREATE_TOPIC cannot create a second topic (it may answer
//   TOPIC_ALREADY_EXISTS when the first attempt had created it);
// - PRODUCE only when its bytes certainly never left the process (`requestSent` false), unless
//   the client was made with produceDelivery 'at-least-once': then a PRODUCE that may have been
//   stored is resent too, and may be stored twice.
// Never retried: timeouts (a broker that did not answer in time will not do better at once),
// broker errors (the broker has answered), protocol errors (the broker is broken), usage errors.

import { ConnectionError } from './errors.js';
import { MessageType } from './limits.js';

export const DEFAULT_RETRY = Object.freeze({ attempts: 3, initialBackoffMs: 50, maxBackoffMs: 1000, multiplier: 2, jitter: 0.2 });

/** The retry settings, checked: `attempts` counts every try (1 never retries). */
export function retryPolicy(options = {}) {
  const policy = { ...DEFAULT_RETRY, ...options };
  if (!Number.isInteger(policy.attempts) || policy.attempts < 1) throw new RangeError('retry.attempts must be an integer >= 1');
  if (!(policy.initialBackoffMs >= 0 && policy.maxBackoffMs >= 0)) throw new RangeError('retry backoffs must be >= 0');
  if (!(policy.multiplier >= 1)) throw new RangeError('retry.multiplier must be >= 1');
  if (!(policy.jitter >= 0 && policy.jitter <= 1)) throw new RangeError('retry.jitter must be between 0 and 1');
  return Object.freeze(policy);
}

/** Milliseconds to wait before retry number `retry` (1 for the first). */
export function backoffMs(policy, retry) {
  const base = Math.min(policy.maxBackoffMs, policy.initialBackoffMs * policy.multiplier ** (retry - 1));
  return base * (1 - policy.jitter * Math.random()); // jitter: many clients do not retry in step
}

/** Whether a failed attempt of `request` (null: of connecting) may be tried again. */
export function mayRetry(error, request, produceDelivery) {
  if (!(error instanceof ConnectionError)) return false;
  if (request === null || !error.requestSent) return true;
  return request.type !== MessageType.PRODUCE || produceDelivery === 'at-least-once';
}
