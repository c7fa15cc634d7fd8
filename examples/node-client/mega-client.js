// A small MEGA client for Node.js, written from docs/PROTOCOL.md. No dependencies.
//
//   import { MegaClient, BrokerError } from './mega-client.js';

export { MegaClient } from './lib/client.js';
export {
  BrokerError,
  ConnectionClosedByBroker,
  ConnectionError,
  MegaError,
  ProtocolError,
  TimeoutError,
  UsageError,
  ValidationError,
} from './lib/errors.js';
export { ClientConnection } from './lib/connection.js';
export { makeRequest, encodeRequest } from './lib/requests.js';
export { readResponse } from './lib/responses.js';
export { ReceiveBuffer } from './lib/receive-buffer.js';
export { codeName, MAX_PAYLOAD_BYTES, MAX_TOPIC_BYTES, MessageType, topicProblem } from './lib/limits.js';
