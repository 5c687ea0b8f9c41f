// The Node client side of benchmarks/langgraph_protocol.py: a genuine client of either codec, or a bare ably-js
// subscriber, driven one JSON op per stdin line; one JSON answer per op on stdout (and nothing else), or
// {"failed": "..."}. Every wait is bounded by the op's `ms`.
//
// The clients, each on a fresh channel per turn, over one ably-js connection that lives across the turns:
//   ait  `@ably/ai-transport` 0.8.0's client session (Vercel UIMessage codec): `view.send` starts the turn and the
//        run's assistant text is read off `run.messages` on every view `update` and tree `output`;
//   lg   `@langchain/langgraph-sdk` 1.15.0's `StreamController` (what `useStream` runs) on js/langgraph-transport:
//        `submit` starts the turn and the newest AI message is read off `rootStore` on every change;
//   bare a plain `channel.subscribe` that only counts the agent's messages (the baseline of the CPU figure).
// The reply is words separated by single spaces, each a token of the Python model: a token has arrived once the
// text holds that many words (counted incrementally, so the count costs next to nothing per update).
//
// Env: ABLY_ENDPOINT, ABLY_API_KEY, CLIENT_ID (default "user"), AGENT (the agent's clientId, the one trusted).
// Ops (times are Date.now() ms; CPU is process.cpuUsage() user + system ms since the turn's `open`/`bare`):
//   {"op":"open","codec":"ait|lg","channel"}   subscribe (AIT: connect + history; LG: hydrate) -> {"opened":true}
//   {"op":"send","text"}                        start a turn (LG: not awaited)  -> {"sent":at, "invocation"? (AIT)}
//   {"op":"wait","words","text"?,"arrivals"?,"ms"}  until the reply has `words` words (and reads `text`)
//        -> {"sent","done","cpuMs","runId","words","arrivals"?: [ms the text first held word i, ...]}
//   {"op":"stop"}                               LG: StreamController.stop()      -> {"asked":at, "returned":at}
//   {"op":"idle","ms"}                          LG: until not loading            -> {"idle":at}
//   {"op":"close"}                              end the turn's session           -> {"closed":true}
//   {"op":"bare","channel"}                     a bare subscriber on `channel`   -> {"subscribed":true}
//   {"op":"bare-wait","ms"}                     until the agent's ai-run-end     -> {"cpuMs","delivered","byName"}
//   {"op":"exit"}                               close the connection and exit    -> {"exited":true}
import readline from 'node:readline';

import Ably from '../tests/js/node_modules/ably/build/ably-node.js';
import { createClientSession, createUIMessageCodec } from
  '../tests/js/node_modules/@ably/ai-transport/dist/vercel/ably-ai-transport-vercel.js';
import { Client } from '../tests/js/node_modules/@langchain/langgraph-sdk/dist/index.js';
import { StreamController } from '../tests/js/node_modules/@langchain/langgraph-sdk/dist/stream/index.js';

import { AblyAgentServerAdapter, bindClient } from '../js/langgraph-transport/index.js';

console.log = (...args) => console.error(...args);  // stdout carries answers only
const AGENT = process.env.AGENT ?? 'agent';
const endpoint = new URL(process.env.ABLY_ENDPOINT);
const realtime = new Ably.Realtime({
  key: process.env.ABLY_API_KEY, endpoint: endpoint.hostname, port: Number(endpoint.port), tls: false,
  clientId: process.env.CLIENT_ID ?? 'user', logLevel: 1,
  logHandler: (message) => process.stderr.write(`[ably-js] ${message}\n`),
});
const codec = createUIMessageCodec();
const cpuMs = () => {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
};

function within(ms, what, promise) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function textOfUi(message) {
  return (message?.parts ?? []).filter((part) => part.type === 'text').map((part) => part.text).join('');
}

function textOfLangChain(message) {
  const content = message.content;
  return typeof content === 'string' ? content : content.map((block) => block.text ?? '').join('');
}

/** One turn's reply as the client shows it: words as they arrive, and who waits for how many. */
class Reply {
  cpu0 = cpuMs();
  sent = null;
  runId = null;
  arrivals = [];
  text = '';
  #length = 0;
  #spaces = 0;
  #waiters = [];

  /** The reply's text now: count the words it gained, timestamp each, and wake whoever waits for them. */
  saw(text) {
    if (text.length <= this.#length) return;
    const now = Date.now();
    for (let i = this.#length; i < text.length; i += 1) if (text.charCodeAt(i) === 32) this.#spaces += 1;
    this.#length = text.length;
    const words = this.#spaces + 1;
    while (this.arrivals.length < words) this.arrivals.push(now);
    this.text = text;
    for (const waiter of [...this.#waiters]) this.#check(waiter);
  }

  reset() {
    this.#length = this.#spaces = 0;
    this.arrivals = [];
    this.text = '';
    this.sent = Date.now();
  }

  until(op) {
    return within(op.ms ?? 30000, `${op.words} words (have ${this.arrivals.length})`, new Promise((resolve) => {
      const waiter = { op, resolve };
      this.#waiters.push(waiter);
      this.#check(waiter);
    }));
  }

  #check(waiter) {
    const { op } = waiter;
    if (this.arrivals.length < op.words || (op.text !== undefined && this.text !== op.text)) return;
    this.#waiters.splice(this.#waiters.indexOf(waiter), 1);
    waiter.resolve({
      sent: this.sent, done: Date.now(), cpuMs: cpuMs() - this.cpu0, runId: this.runId, words: this.arrivals.length,
      ...(op.arrivals ? { arrivals: this.arrivals.slice(0, op.words) } : {}),
    });
  }
}

/** A turn of the Vercel codec's client: `@ably/ai-transport`'s client session on `channel`. */
class AitTurn {
  constructor(channel) {
    this.reply = new Reply();
    this.session = createClientSession({ client: realtime, channelName: channel });
    this.session.on('error', (error) => console.error('session error', error?.message ?? error));
    this.run = null;
  }

  async open() {
    await this.session.connect();
    while (this.session.view.hasOlder()) if ((await this.session.view.loadOlder(100)).length === 0) break;
    const look = () => this.#look();
    this.session.view.on('update', look);
    this.session.tree.on('output', look);
  }

  #look() {
    if (!this.run) return;
    if (!this.reply.runId && this.run.runId) this.reply.runId = this.run.runId;
    this.reply.saw(this.run.messages.filter((m) => m.role === 'assistant').map(textOfUi).join(''));
  }

  async send(text) {
    this.reply.reset();
    const message = { id: globalThis.crypto.randomUUID(), role: 'user', parts: [{ type: 'text', text }] };
    this.run = await this.session.view.send(codec.createUserMessage(message));
    return { sent: this.reply.sent, invocation: this.run.toInvocation().toJSON() };
  }

  async close() {
    await this.session.close();
  }
}

/** A turn (or several, for the stops) of the agent protocol's client: `StreamController` on the Ably adapter. */
class LgTurn {
  constructor(channel) {
    this.reply = new Reply();
    this.channel = channel;
    this.adapter = new AblyAgentServerAdapter({ realtime, threadId: channel, trustedAgents: [AGENT] });
    this.controller = new StreamController({
      assistantId: 'agent', threadId: channel, transport: this.adapter,
      client: bindClient(new Client({ apiUrl: 'http://127.0.0.1:9' }), this.adapter),
      onCreated: ({ runId }) => { this.reply.runId = runId; },
    });
    this.before = null;  // the newest AI message's id when the turn was sent: the reply is a newer one
  }

  async open() {
    await this.controller.hydrate(this.channel);
    this.controller.rootStore.subscribe(() => {
      const last = this.controller.rootStore.getSnapshot().messages.at(-1);
      if (last?.getType?.() === 'ai' && last.id !== this.before) this.reply.saw(textOfLangChain(last));
    });
  }

  async send(text) {
    const last = this.controller.rootStore.getSnapshot().messages.at(-1);
    this.before = last?.getType?.() === 'ai' ? last.id : null;
    this.reply.reset();
    this.reply.runId = null;
    this.controller.submit({ messages: [{ type: 'human', content: text }] }).catch(
      (error) => console.error('submit failed', error?.message ?? error));
    return { sent: this.reply.sent };
  }

  async stop() {
    const asked = Date.now();
    await this.controller.stop();
    return { asked, returned: Date.now() };
  }

  idle(ms) {
    const store = this.controller.rootStore;
    const idle = () => !store.getSnapshot().isLoading;
    if (idle()) return Promise.resolve({ idle: Date.now() });
    return within(ms, 'idle', new Promise((resolve) => {
      const unsubscribe = store.subscribe(() => {
        if (!idle()) return;
        unsubscribe();
        resolve({ idle: Date.now() });
      });
    }));
  }

  async close() {
    await this.controller.dispose();
    await this.adapter.close();
  }
}

/** The baseline: the same channel's messages through ably-js alone, counted and nothing more. */
class Bare {
  constructor(channel) {
    this.cpu0 = cpuMs();
    this.channel = realtime.channels.get(channel);
    this.delivered = 0;
    this.byName = {};
    this.ended = null;
    this.endedWhen = new Promise((resolve) => { this.end = resolve; });
    this.listener = (message) => {
      if (message.clientId !== AGENT) return;
      this.delivered += 1;
      this.byName[message.name] = (this.byName[message.name] ?? 0) + 1;
      if (message.name === 'ai-run-end') this.end({ cpuMs: cpuMs() - this.cpu0, delivered: this.delivered,
        byName: this.byName });
    };
  }

  async open() {
    await this.channel.subscribe(this.listener);
  }

  async wait(ms) {
    const result = await within(ms, 'the run end', this.endedWhen);
    this.channel.unsubscribe(this.listener);
    await this.channel.detach().catch(() => {});
    return result;
  }
}

let turn = null;
let bare = null;

async function run(op) {
  switch (op.op) {
    case 'open':
      turn = op.codec === 'ait' ? new AitTurn(op.channel) : new LgTurn(op.channel);
      await within(op.ms ?? 15000, 'open', turn.open());
      return { opened: true };
    case 'send':
      return within(op.ms ?? 15000, 'send', turn.send(op.text));
    case 'wait':
      return turn.reply.until(op);
    case 'stop':
      return within(op.ms ?? 15000, 'stop', turn.stop());
    case 'idle':
      return turn.idle(op.ms ?? 15000);
    case 'close':
      await within(op.ms ?? 15000, 'close', turn.close()).catch((error) => console.error(String(error)));
      turn = null;
      return { closed: true };
    case 'bare':
      bare = new Bare(op.channel);
      await within(op.ms ?? 15000, 'subscribe', bare.open());
      return { subscribed: true };
    case 'bare-wait':
      return bare.wait(op.ms ?? 30000);
    case 'exit':
      realtime.close();
      await within(5000, 'closing', realtime.connection.whenState('closed')).catch(() => {});
      return { exited: true };
    default:
      throw new Error(`unknown op ${op.op}`);
  }
}

await within(15000, 'connecting', realtime.connection.whenState('connected'));
process.stdout.write(`${JSON.stringify({ ready: true })}\n`);
for await (const line of readline.createInterface({ input: process.stdin })) {
  if (!line.trim()) continue;
  const op = JSON.parse(line);
  let answer;
  try {
    answer = await run(op);
  } catch (error) {
    answer = { failed: String(error?.message ?? error) };
  }
  process.stdout.write(`${JSON.stringify(answer)}\n`);
  if (op.op === 'exit') process.exit(0);
}
