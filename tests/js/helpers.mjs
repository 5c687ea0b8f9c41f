// Shared helpers for the ably-js interop tests (not a test file: node --test runs only *.test.mjs here).
//
// The dev server is chosen by the environment, as tests/interop/test_ably_js.py sets it:
//   ABLY_ENDPOINT  e.g. http://127.0.0.1:8080
//   ABLY_API_KEY   e.g. dev.key:local-development-secret-not-for-production
import * as Ably from 'ably';

const endpoint = process.env.ABLY_ENDPOINT;
const key = process.env.ABLY_API_KEY;
if (!endpoint || !key) {
  throw new Error('Set ABLY_ENDPOINT (http://127.0.0.1:PORT of a dev server) and ABLY_API_KEY to run these tests');
}
const url = new URL(endpoint);
const tls = url.protocol === 'https:';
const port = Number(url.port) || (tls ? 443 : 80);

export { Ably };

/** Both wire formats, for the tests that are cheap to run twice. */
export const FORMATS = [
  { name: 'json', binary: false },
  { name: 'msgpack', binary: true },
];

/** A realtime client for the dev server (ws:// for an http:// endpoint; an IP or port means no fallback hosts). */
export function realtime({ binary = true, clientId, ...options } = {}) {
  return new Ably.Realtime({
    key,
    endpoint: url.hostname,
    ...(tls ? { tlsPort: port } : { port }),
    tls,
    useBinaryProtocol: binary,
    ...(clientId === undefined ? {} : { clientId }),
    ...options,
  });
}

/** A channel name no other test (or earlier run against the same server) uses. */
export function uniqueChannel(prefix) {
  return `${prefix}:${process.pid}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
}

/** `promise`, or a rejection naming `what` after `ms`: a hung SDK call fails the test instead of the run. */
export function within(ms, what, promise) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export async function connected(client, ms = 5000) {
  await within(ms, `connecting ${client.options.clientId ?? 'client'}`, client.connection.whenState('connected'));
  return client;
}

/** Close every client and wait for `closed`, so node has no open sockets left and exits. */
export async function closeAll(...clients) {
  await Promise.all(
    clients.map(async (client) => {
      const state = client.connection.state;
      if (state === 'closed' || state === 'failed') return;
      const closed = client.connection.whenState('closed');
      client.close();
      await within(5000, 'closing a client', closed).catch(() => {});
    }),
  );
}

/**
 * Subscribe `channel` and collect what arrives; `until(n)` resolves once `n` messages have,
 * `when(done)` once `done(messages)` is true.
 * The subscription (and so the attach) is complete when the returned promise resolves.
 */
export async function collector(channel, event) {
  const messages = [];
  const waiters = [];
  const listener = (message) => {
    messages.push(message);
    for (const waiter of waiters.filter((w) => w.done(messages))) {
      waiters.splice(waiters.indexOf(waiter), 1);
      waiter.resolve(messages);
    }
  };
  const when = (done, ms, what) => {
    if (done(messages)) return Promise.resolve(messages);
    const reached = new Promise((resolve) => waiters.push({ done, resolve }));
    return within(ms, `${what} on ${channel.name} (got ${messages.length} messages)`, reached);
  };
  if (event) await channel.subscribe(event, listener);
  else await channel.subscribe(listener);
  return {
    messages,
    until(count, ms = 5000) {
      return when((got) => got.length >= count, ms, `${count} messages`);
    },
    /** Resolves once `done(messages)` holds; `what` names the wait in a timeout. */
    when(done, what = 'a condition', ms = 5000) {
      return when(done, ms, what);
    },
  };
}

/** The items of every page of a paginated result, following `next()`; also returns the page sizes. */
export async function allPages(first) {
  const items = [];
  const sizes = [];
  for (let page = first; page; page = page.hasNext() ? await page.next() : null) {
    items.push(...page.items);
    sizes.push(page.items.length);
  }
  return { items, sizes };
}
