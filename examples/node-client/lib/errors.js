// Every error the client rejects a call with: one small family under MegaError.
//
//   MegaError
//   ├── BrokerError               the broker answered with an error code (code, codeName)
//   ├── ConnectionError           refused, reset, EOF, closed; requestSent says if it may have arrived
//   │   └── ConnectionClosedByBroker   the broker's unsolicited frame 00 00 00 00 00 08 (CONN-9)
//   ├── TimeoutError              connecting or an answer took longer than the timeout (CLIENT-11)
//   ├── ProtocolError             the broker's bytes break the spec (reason: a short keyword)
//   └── UsageError                the call itself is refused: not connected, closed, ...
//       └── ValidationError       an argument refused before anything is sent (CLIENT-17)
//
// A BrokerError leaves the connection usable. After a ConnectionError, TimeoutError or
// ProtocolError the connection is closed and the next call opens a new one.

import { codeName } from './limits.js';

export class MegaError extends Error {
  constructor(message, options) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** An error response (RESP-3): `code` is the signed i8 on the wire, `codeName` its name (ERR-2). */
export class BrokerError extends MegaError {
  constructor(code, { correlationId = null, request = '' } = {}) {
    const name = codeName(code);
    super(`broker answered ${request ? `${request} with ` : ''}${name} (${code})`);
    this.code = code;
    this.codeName = name;
    this.correlationId = correlationId;
  }
}

/**
 * The connection could not be opened, or ended before the answer. `requestSent` is false only
 * when the request's bytes certainly never left this process (safe to send again); when true,
 * its outcome is unknown (CONN-14): a PRODUCE may or may not have been stored.
 */
export class ConnectionError extends MegaError {
  constructor(message, { requestSent = true, cause } = {}) {
    super(message, cause === undefined ? undefined : { cause });
    this.requestSent = requestSent;
  }
}

/** The broker sent its unsolicited frame (it is closing the connection, CONN-9). */
export class ConnectionClosedByBroker extends ConnectionError {
  constructor(message = 'the broker closed the connection (unsolicited NETWORK_ERROR frame)', options = {}) {
    super(message, options);
  }
}

/** A blocking step took longer than its timeout; the connection was closed (CLIENT-11). */
export class TimeoutError extends MegaError {
  constructor(message, { requestSent = true } = {}) {
    super(message);
    this.requestSent = requestSent;
  }
}

/**
 * The broker's bytes do not follow docs/PROTOCOL.md. `reason` is one of `correlation-mismatch`,
 * `bad-success-flag`, `negative-length`, `length-over-limit`, `unexpected-frame`,
 * `topic-not-utf8`, `topic-echo-mismatch`. The connection was closed (CLIENT-10).
 */
export class ProtocolError extends MegaError {
  constructor(message, { reason, correlationId = null } = {}) {
    super(message);
    this.reason = reason;
    this.correlationId = correlationId;
  }
}

/** The call was refused by the client itself: not connected, closed, already connected. */
export class UsageError extends MegaError {}

/** An argument was refused before anything was sent: a bad topic name, a payload over 1 MiB. */
export class ValidationError extends UsageError {}
