// One device of a LangGraph front end: the genuine `StreamController` of @langchain/langgraph-sdk 1.15.0 (what
// `useStream` runs) on the repository's Ably transport, driven line by line from stdin, for tests/interop.
//
// Env: ABLY_ENDPOINT, ABLY_API_KEY (as ../helpers.mjs), THREAD (the thread = channel), CLIENT_ID (default "user"),
//      TRUSTED (an agent clientId whose events are believed; default: anyone's), BINARY (0 for JSON; default 1).
// stdin: one JSON op per line; stdout: one JSON answer per op (and nothing else), {"failed": "..."} when it fails.
//   {"op":"submit","text":"hi"}                  start a run (not awaited)          -> {"submitted":true}
//   {"op":"wait","for":"idle|loading|interrupt|tokens|error|text","text"?,"ms":10000} -> the state once it holds
//     (`text`: not loading, no interrupt pending, and the newest message reads `text`. The SDK may end loading a
//     moment before a run's last events land, as the terminal comes on its lifecycle stream too: wait for what
//     the page must show.)
//   {"op":"respond","response":<any>,"interruptId"?}  answer an interrupt (awaited)  -> {"responded":true}
//   {"op":"stop"}                               stop() the running run              -> {"stopped":true}
//   {"op":"state"}                               the state now                       -> {values, messages, ...}
//   {"op":"events"}                              every event seen, in order          -> {"events":[{event_id, method}]}
//   {"op":"detach"} / {"op":"attach"}            the thread's channel, as a long time offline would leave it
//                                                (a re-attach without continuity)    -> {"detached"|"attached":true}
//   {"op":"close"}                               dispose, close the client and exit  -> {"closed":true}
import readline from 'node:readline';

import { Client } from '@langchain/langgraph-sdk';
import { StreamController } from '@langchain/langgraph-sdk/stream';

import { AblyAgentServerAdapter, bindClient } from '../../../js/langgraph-transport/index.js';
import { closeAll, connected, realtime, within } from '../helpers.mjs';

console.log = (...args) => console.error(...args);  // stdout carries answers only
const thread = process.env.THREAD;
const trusted = process.env.TRUSTED;
const client = await connected(realtime({ clientId: process.env.CLIENT_ID ?? 'user', binary: process.env.BINARY !== '0' }));
const adapter = new AblyAgentServerAdapter({ realtime: client, threadId: thread, trustedAgents: trusted ? [trusted] : undefined });
const controller = new StreamController({
  assistantId: 'agent', threadId: thread, transport: adapter,
  client: bindClient(new Client({ apiUrl: 'http://127.0.0.1:9' }), adapter),
});
const seen = [];
const watched = new WeakSet();
const texts = new Set();  // every text the newest AI message has shown: more than one means it streamed
// The messages shown when the last submit was made: a late update of the turn before (its last `values`, which
// does not hold the new input yet) shows an older AI message last, and its texts must not pass for the new reply's.
let shownAtSubmit = new Set();
/** Record every event the SDK lets through (it de-duplicates by event_id) on the controller's current thread. */
function watchEvents() {
  const current = controller.getThread();
  if (current && !watched.has(current)) {
    watched.add(current);
    current.onEvent((event) => seen.push(event));
  }
}
controller.rootStore.subscribe(() => {
  const last = controller.rootStore.getSnapshot().messages.at(-1);
  if (last?.getType?.() === 'ai' && !shownAtSubmit.has(last.id)) texts.add(textOf(last));
});

function textOf(message) {
  const content = message.content;
  return typeof content === 'string' ? content : content.map((block) => block.text ?? '').join('');
}

function state() {
  const s = controller.rootStore.getSnapshot();
  return {
    values: s.values,
    messages: s.messages.map((m) => ({ type: m.getType(), id: m.id, text: textOf(m) })),
    interrupts: s.interrupts,
    isLoading: s.isLoading,
    error: s.error ? String(s.error.message ?? s.error) : null,
    partialTexts: texts.size,
    toolCalls: (s.toolCalls ?? []).map((t) => ({ name: t.name, status: t.status, output: t.output ?? null })),
    subgraphs: [...controller.subgraphStore.getSnapshot().values()]
      .map((g) => ({ nodeName: g.nodeName, namespace: g.namespace, status: g.status })),
  };
}

const conditions = {
  idle: (s) => !s.isLoading,
  loading: (s) => s.isLoading,
  interrupt: (s) => !s.isLoading && s.interrupts.length > 0,
  tokens: (s) => s.partialTexts > 1,
  error: (s) => !s.isLoading && s.error !== null,
  text: (s, op) => !s.isLoading && s.interrupts.length === 0 && s.messages.at(-1)?.text === op.text,
};

function waitFor(op) {
  const name = op.for;
  const ms = op.ms ?? 10000;
  if (!conditions[name]) throw new Error(`no condition ${name}`);
  const holds = () => conditions[name](state(), op);
  if (holds()) return Promise.resolve(state());
  return within(ms, `waiting for ${name}`, new Promise((resolve) => {
    const unsubscribe = controller.rootStore.subscribe(() => {
      if (holds()) {
        unsubscribe();
        resolve(state());
      }
    });
  }));
}

async function run(op) {
  switch (op.op) {
    case 'submit':
      texts.clear();
      shownAtSubmit = new Set(controller.rootStore.getSnapshot().messages.map((m) => m.id).filter(Boolean));
      controller.submit({ messages: [{ type: 'human', content: op.text }] }).catch(() => {});
      await new Promise((resolve) => setImmediate(resolve));
      watchEvents();
      return { submitted: true };
    case 'wait':
      return waitFor(op);
    case 'respond':
      await controller.respond(op.response, op.interruptId ? { interruptId: op.interruptId } : undefined);
      return { responded: true };
    case 'stop':
      await controller.stop();
      return { stopped: true };
    case 'state':
      return state();
    case 'events':
      return { events: seen.map((e) => ({ event_id: e.event_id, seq: e.seq, method: e.method })) };
    case 'detach':
      await client.channels.get(thread).detach();
      return { detached: true };
    case 'attach':
      await client.channels.get(thread).attach();
      return { attached: true };
    case 'close':
      await controller.dispose();
      await closeAll(client);
      return { closed: true };
    default:
      throw new Error(`unknown op ${op.op}`);
  }
}

await controller.hydrate(thread).catch((error) => console.error('hydrate failed', error));
watchEvents();
process.stdout.write(`${JSON.stringify({ ready: true, state: state() })}\n`);
for await (const line of readline.createInterface({ input: process.stdin })) {
  if (!line.trim()) continue;
  const op = JSON.parse(line);
  watchEvents();
  try {
    process.stdout.write(`${JSON.stringify(await run(op))}\n`);
  } catch (error) {
    process.stdout.write(`${JSON.stringify({ failed: String(error?.message ?? error) })}\n`);
  }
  if (op.op === 'close') process.exit(0);
}
