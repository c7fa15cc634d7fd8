// Start the MEGA mock broker from a Node.js test suite and drive it over its control API.
//
// No npm dependency: child_process to start `python3 -m mock_broker --port 0 --control-port 0`,
// its start-up JSON line on stdout for both ports, and fetch for the API (mock_broker/README.md,
// "From another language", is the reference).

import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';

/** An error answer of the control API: `code` is its error code, `status` the HTTP status. */
export class ControlApiError extends Error {
  constructor(status, code, message) {
    super(`${status} ${code}: ${message}`);
    this.status = status;
    this.code = code;
  }
}

/** The control API at `url` (e.g. http://127.0.0.1:41234/v1). Every method throws ControlApiError on an error. */
export class ControlApi {
  constructor(url) {
    this.url = url;
  }

  async call(method, path, body) {
    const init = { method, headers: {} };
    if (body !== undefined) {
      init.headers['content-type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    const res = await fetch(this.url + path, init);
    const text = await res.text();
    const json = text ? JSON.parse(text) : null;
    if (!res.ok) throw new ControlApiError(res.status, json.error.code, json.error.message);
    return json;
  }

  get(path) { return this.call('GET', path); }

  /** Drop topics, messages, fault rules and closed connections' records; with closeConnections, open ones too. */
  reset({ closeConnections = false } = {}) {
    return this.call('POST', '/reset', { close_connections: closeConnections });
  }

  /** Add a fault rule in the --fault grammar (e.g. 'produce:error=RESOURCE_EXHAUSTED:once'); returns it with its id. */
  addFault(rule) { return this.call('POST', '/faults', { rule }); }

  removeFault(id) { return this.call('DELETE', `/faults/${id}`); }

  /** Wait on the broker until a condition holds (e.g. { for: 'requests', at_least: 2 }); throws if it does not. */
  async waitFor(condition, timeoutMs = 5000) {
    const got = await this.call('POST', '/wait', { ...condition, timeout_ms: timeoutMs });
    if (!got.met) throw new Error(`not met within ${timeoutMs} ms: ${JSON.stringify(got)}`);
    return got;
  }

  /** Every connection's full record (requests, answers, bytes both ways in hex, faults, how it ended). */
  async connections() {
    const { connections } = await this.get('/connections?transcript=true');
    return connections;
  }
}

/**
 * Start a mock broker; resolves once both ports listen.
 * `python` defaults to $MEGA_PYTHON or python3; `args` are more options (e.g. ['--profile', 'reference']).
 */
export async function startBroker({ python = process.env.MEGA_PYTHON || 'python3', args = [] } = {}) {
  const child = spawn(python, ['-m', 'mock_broker', '--port', '0', '--control-port', '0', ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: child.stdout });
  const started = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the broker did not start within 15 s')), 15000);
    child.once('exit', (code) => reject(new Error(`the broker exited with status ${code}`)));
    lines.on('line', (line) => {
      // The first line is for people ("... listening on HOST:PORT ..."); the second is this JSON object.
      if (!line.startsWith('{')) return;
      clearTimeout(timer);
      resolve(JSON.parse(line));
    });
  });
  return {
    mega: started.mega, // { host, port }
    api: new ControlApi(started.control.url),
    async stop() {
      if (child.exitCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    },
  };
}
