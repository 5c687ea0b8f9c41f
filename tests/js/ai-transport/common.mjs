// Shared plumbing for the @ably/ai-transport 0.8.0 harness scripts in this folder.
//
// Contract of every script: configuration comes from the environment, stdout carries nothing but
// JSON lines (one object per line; the last line is the result), logs go to stderr, every Ably
// client is closed before exit, and the exit status is non-zero on error (1) or timeout (2).
//
// Common environment:
//   ABLY_ENDPOINT   http://127.0.0.1:PORT of the dev server (https:// for TLS)      required
//   ABLY_API_KEY    e.g. dev.key:local-development-secret-not-for-production        required
//   SESSION         the session (Ably channel) name                                  required by most
//   ABLY_FORMAT     msgpack (default) | json: the realtime wire format
//   AIT_LOG_LEVEL   trace|debug|info|warn|error|silent for the SDK logger (default warn, to stderr)
//   ABLY_LOG_LEVEL  ably-js logLevel number (default 1 = errors), to stderr
import * as Ably from 'ably';
import { makeLogger } from '@ably/ai-transport';

// Anything that would print to stdout (ably-js's default log handler, console.log) goes to stderr,
// so stdout stays machine-readable.
console.log = (...args) => console.error(...args);
console.info = (...args) => console.error(...args);
console.debug = (...args) => console.error(...args);

export { Ably };

export function env(name, fallback) {
  const value = process.env[name];
  return value === undefined || value === '' ? fallback : value;
}

export function requireEnv(name) {
  const value = env(name);
  if (value === undefined) throw new Error(`set ${name}`);
  return value;
}

export function intEnv(name, fallback) {
  const raw = env(name);
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value)) throw new Error(`${name} must be a number, got ${JSON.stringify(raw)}`);
  return value;
}

export function log(...args) {
  process.stderr.write(`[${new Date().toISOString()}] ${args.map((a) => (typeof a === 'string' ? a : JSON.stringify(a))).join(' ')}\n`);
}

/** One JSON line on stdout. */
export function emit(object) {
  process.stdout.write(`${JSON.stringify(object)}\n`);
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** A logger for the SDK that writes to stderr (its default console logger uses stdout for debug/info). */
export function sdkLogger() {
  const level = env('AIT_LOG_LEVEL', 'warn');
  return makeLogger({
    logLevel: level,
    logHandler: (message, lvl, context) => {
      const ctx = context ? ` ${safeJson(context)}` : '';
      process.stderr.write(`[${new Date().toISOString()}] ${String(lvl).toUpperCase()} ait: ${message}${ctx}\n`);
    },
  });
}

function safeJson(value) {
  try {
    return JSON.stringify(value);
  } catch {
    return String(value);
  }
}

const clients = [];

/** A realtime client for the dev server, registered so `main` closes it. */
export function realtime(clientId) {
  const endpoint = new URL(requireEnv('ABLY_ENDPOINT'));
  const key = requireEnv('ABLY_API_KEY');
  const tls = endpoint.protocol === 'https:';
  const port = Number(endpoint.port) || (tls ? 443 : 80);
  const client = new Ably.Realtime({
    key,
    endpoint: endpoint.hostname,
    ...(tls ? { tlsPort: port } : { port }),
    tls,
    useBinaryProtocol: env('ABLY_FORMAT', 'msgpack') !== 'json',
    logLevel: intEnv('ABLY_LOG_LEVEL', 1),
    logHandler: (msg) => process.stderr.write(`[ably-js] ${msg}\n`),
    ...(clientId ? { clientId } : {}),
  });
  clients.push(client);
  return client;
}

async function closeClients() {
  await Promise.all(
    clients.map(async (client) => {
      const state = client.connection.state;
      if (state === 'closed' || state === 'failed') return;
      const closed = client.connection.whenState('closed');
      client.close();
      await Promise.race([closed, sleep(3000)]);
    }),
  );
}

/** Serialise an Ably.ErrorInfo / Error for JSON output. */
export function errorJson(error) {
  if (error === undefined || error === null) return undefined;
  if (typeof error !== 'object') return { message: String(error) };
  return {
    message: error.message,
    ...(error.code === undefined ? {} : { code: error.code }),
    ...(error.statusCode === undefined ? {} : { statusCode: error.statusCode }),
    ...(error.name && error.name !== 'Error' && error.name !== 'ErrorInfo' ? { name: error.name } : {}),
  };
}

export class Timeout extends Error {}

/** `promise`, or a Timeout rejection naming `what` after `ms`. */
export function within(ms, what, promise) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Timeout(`timed out after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * Resolve once `predicate()` is truthy, re-checking on every `update`/`run`/`output` event of the
 * given emitters (Tree or View: `on(event, handler) -> unsubscribe`) and on a 25 ms poll.
 * Rejects with Timeout after `ms`.
 */
export function waitUntil(predicate, { ms, what, emitters = [] }) {
  return new Promise((resolve, reject) => {
    const unsubs = [];
    let timer;
    let poll;
    const finish = (fn, value) => {
      clearTimeout(timer);
      clearInterval(poll);
      for (const unsub of unsubs) unsub();
      fn(value);
    };
    const check = () => {
      let value;
      try {
        value = predicate();
      } catch (error) {
        finish(reject, error);
        return;
      }
      if (value) finish(resolve, value);
    };
    for (const emitter of emitters) {
      for (const event of ['update', 'run', 'output']) {
        try {
          unsubs.push(emitter.on(event, check));
        } catch {
          // Views have no 'output' event.
        }
      }
    }
    timer = setTimeout(() => finish(reject, new Timeout(`timed out after ${ms} ms: ${what}`)), ms);
    poll = setInterval(check, 25);
    check();
  });
}

/** Text of a UIMessage: its text parts concatenated. */
export function textOf(message) {
  return (message?.parts ?? [])
    .filter((part) => part.type === 'text')
    .map((part) => part.text)
    .join('');
}

export const TERMINAL = new Set(['complete', 'cancelled', 'error']);

/** A JSON-safe RunInfo (`view.runs()` / `view.run(id)` entry). */
export function runInfoJson(info) {
  if (!info) return undefined;
  return { ...info, ...(info.error ? { error: errorJson(info.error) } : {}) };
}

/**
 * With WIRE=1: a list that collects every raw Ably message the session's channel delivers from now
 * on (a second listener on the session's channel; call it after `session.connect()`, because
 * `channels.get(name)` must not race the session's own `channels.get(name, {params})`).
 * Returns undefined without WIRE=1.
 */
export function recordWire(client, channelName) {
  if (env('WIRE') !== '1') return undefined;
  const wire = [];
  client.channels.get(channelName).subscribe((m) =>
    wire.push({
      action: m.action,
      name: m.name,
      serial: m.serial,
      ...(m.version ? { version: m.version } : {}),
      clientId: m.clientId,
      data: m.data,
      extras: m.extras,
    }),
  );
  return wire;
}

/** A deep copy: the SDK's reducer mutates the UIMessage objects it hands out as more chunks fold. */
export const snapshot = (value) => (value === undefined ? undefined : JSON.parse(JSON.stringify(value)));

/** `view.getMessages()` as plain UIMessages (snapshots) plus their codec-message-ids. */
export function viewJson(view) {
  const entries = view.getMessages();
  return {
    messages: entries.map((entry) => snapshot(entry.message)),
    codecMessageIds: entries.map((entry) => entry.codecMessageId),
  };
}

/**
 * Run `body()`; print its result (or `{error}`) as the final JSON line; close every client; exit.
 * A hard watchdog (`WATCHDOG_MS`, default TIMEOUT_MS + 15 s) kills a hung script with exit 3.
 */
export async function main(body, { watchdogMs } = {}) {
  const limit = intEnv('WATCHDOG_MS', watchdogMs ?? intEnv('TIMEOUT_MS', 20000) + 15000);
  const watchdog = setTimeout(() => {
    emit({ error: { message: `watchdog: script still running after ${limit} ms` } });
    process.exit(3);
  }, limit);
  watchdog.unref();
  let code = 0;
  try {
    const result = await body();
    if (result && result.timedOut) code = 2;
    emit(result ?? {});
  } catch (error) {
    log('error:', error?.stack ?? String(error));
    emit({ error: errorJson(error), timedOut: error instanceof Timeout || undefined });
    code = error instanceof Timeout ? 2 : 1;
  }
  try {
    await within(5000, 'closing clients', closeClients());
  } catch (error) {
    log('close:', String(error));
  }
  clearTimeout(watchdog);
  // Anything the SDK left scheduled (its own timers) must not keep node alive; flush stdout first.
  process.stdout.write('', () => process.exit(code));
}
