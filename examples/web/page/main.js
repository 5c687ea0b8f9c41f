// The browser side of examples/web: a chat on one Ably session, through @ably/ai-transport's Vercel codec.
//
// The page never sees an API key: ably-js asks /api/token for a short-lived JWT (authCallback). A message is
// published with `view.send`, and the invocation it returns ({inputEventId, sessionName}) is POSTed to
// /api/chat, where the agent answers it on the channel. Everything on screen is rendered from the session's
// view, live or from history, so a reload (or a second tab with the same ?session=) shows the same conversation.
//
// esbuild bundles this file into bundle.js (`npm run build`; app.py does it when the bundle is missing or stale).
import * as Ably from 'ably';
import { createClientSession, createUIMessageCodec } from '@ably/ai-transport/vercel';

const codec = createUIMessageCodec();
const ACTIVE = new Set(['active']);
// ClientRuns sent from this tab that the agent has not started yet: Cancel must reach them too.
const pending = new Set();

const $ = (id) => document.getElementById(id);
const ui = {
  messages: $('messages'),
  form: $('composer'),
  input: $('input'),
  send: $('send'),
  cancel: $('cancel'),
  status: $('status'),
  session: $('session'),
};

// crypto.randomUUID exists only in secure contexts (https, localhost); a LAN http address gets the fallback.
const uuid = () => (globalThis.crypto?.randomUUID ? crypto.randomUUID() : `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`);

/** The session (Ably channel) this tab shows: ?session=..., else a new one, written into the URL so a reload keeps it. */
function sessionName() {
  const url = new URL(window.location.href);
  let name = url.searchParams.get('session');
  if (!name) {
    name = `conversations:web-${uuid().slice(0, 8)}`;
    url.searchParams.set('session', name);
    window.history.replaceState(null, '', url);
  }
  return name;
}

/** This browser's Ably clientId, kept across reloads. */
function clientId() {
  let id = localStorage.getItem('ably-client-id');
  if (!id) {
    id = `user-${uuid().slice(0, 8)}`;
    localStorage.setItem('ably-client-id', id);
  }
  return id;
}

/**
 * Client options for ably-js. With the dev server, /api/config says where it listens (endpoint, port, TLS);
 * against Ably, ably-js's defaults apply.
 */
async function ablyOptions(id, session) {
  const config = await (await fetch('/api/config')).json();
  const authCallback = (_params, callback) => {
    fetch(`/api/token?clientId=${encodeURIComponent(id)}&session=${encodeURIComponent(session)}`)
      .then((response) => (response.ok ? response.text() : Promise.reject(new Error(`token: HTTP ${response.status}`))))
      .then((token) => callback(null, token), (error) => callback(String(error), null));
  };
  const options = { authCallback, clientId: id };
  const dev = config.devServer;
  if (dev) {
    Object.assign(options, { endpoint: dev.host, tls: dev.tls, ...(dev.tls ? { tlsPort: dev.port } : { port: dev.port }) });
  }
  return options;
}

// --- rendering: the whole view, each time it changes (a conversation is small; the view is the truth) ---

function partElement(part) {
  if (part.type === 'text' || part.type === 'reasoning') {
    const p = document.createElement('p');
    p.className = part.type;
    p.textContent = part.text;
    return p;
  }
  if (part.type.startsWith('tool-') || part.type === 'dynamic-tool') {
    const p = document.createElement('p');
    p.className = 'tool';
    const name = part.type === 'dynamic-tool' ? part.toolName : part.type.slice('tool-'.length);
    const output = part.output === undefined ? '' : ` → ${JSON.stringify(part.output)}`;
    p.textContent = `${name}(${JSON.stringify(part.input ?? {})})${output} [${part.state}]`;
    return p;
  }
  if (part.type === 'data-task') {
    const span = document.createElement('span');
    span.className = `task ${part.data?.status ?? ''}`;
    span.textContent = `${part.data?.node ?? 'task'}: ${part.data?.status ?? ''}`;
    return span;
  }
  return null; // step-start and parts this page does not show
}

function render(session) {
  const fragment = document.createDocumentFragment();
  for (const { codecMessageId, message } of session.view.getMessages()) {
    const item = document.createElement('li');
    item.className = `message ${message.role}`;
    item.dataset.codecMessageId = codecMessageId;
    const who = document.createElement('strong');
    const agent = message.metadata?.agent;
    who.textContent = message.role === 'user' ? 'You' : `Agent${agent ? ` [${agent}]` : ''}`;
    item.append(who);
    for (const part of message.parts) {
      const element = partElement(part);
      if (element) item.append(element);
    }
    const run = message.role === 'assistant' ? session.view.runOf(codecMessageId) : undefined;
    if (run && run.status !== 'complete') {
      const badge = document.createElement('em');
      badge.className = `run-status ${run.status}`;
      badge.textContent = run.status === 'active' ? 'streaming…' : run.status;
      item.append(badge);
    }
    fragment.append(item);
  }
  ui.messages.replaceChildren(fragment);
  ui.messages.scrollTop = ui.messages.scrollHeight;

  const active = session.view.runs().filter((run) => ACTIVE.has(run.status));
  ui.cancel.disabled = active.length === 0 && pending.size === 0;
  document.body.dataset.running = String(active.length > 0 || pending.size > 0);
}

function setStatus(text) {
  ui.status.textContent = text;
}

async function main() {
  const name = sessionName();
  const id = clientId();
  ui.session.textContent = name;
  setStatus('connecting…');

  const client = new Ably.Realtime(await ablyOptions(id, name));
  // Close the connection when the page goes away: a reload then starts a fresh one and reads history.
  window.addEventListener('pagehide', () => client.close());
  const session = createClientSession({ client, channelName: name });
  session.on('error', (error) => console.warn('session error', error));
  const rerender = () => render(session);
  session.view.on('update', rerender);
  session.view.on('run', rerender);

  await session.connect();
  setStatus('loading history…');
  // The SDK never pages history in by itself: load the whole conversation, oldest pages last.
  while (session.view.hasOlder()) {
    if ((await session.view.loadOlder(100)).length === 0) break;
  }
  rerender();
  setStatus(`connected as ${id}`);
  document.body.dataset.ready = 'true';
  ui.input.disabled = false;
  ui.send.disabled = false;
  ui.input.focus();

  ui.form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const text = ui.input.value.trim();
    if (!text) return;
    ui.input.value = '';
    const message = { id: uuid(), role: 'user', parts: [{ type: 'text', text }] };
    try {
      const run = await session.view.send(codec.createUserMessage(message));
      pending.add(run);
      run.started.finally(() => {
        pending.delete(run);
        rerender();
      });
      rerender();
      // The SDK sends no HTTP: handing the invocation to the agent is the app's job.
      const response = await fetch('/api/chat', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(run.toInvocation().toJSON()),
      });
      if (!response.ok) setStatus(`the agent refused the message: HTTP ${response.status}`);
    } catch (error) {
      setStatus(`send failed: ${error.message ?? error}`);
    }
  });

  ui.cancel.addEventListener('click', async () => {
    // A started run is cancelled by its id (from any tab); a run not started yet through its ClientRun.
    const cancels = session.view.runs().filter((run) => ACTIVE.has(run.status)).map((run) => session.cancel(run.runId));
    for (const run of pending) cancels.push(run.cancel());
    try {
      await Promise.all(cancels);
      setStatus('cancelled');
    } catch (error) {
      setStatus(`cancel failed: ${error.message ?? error}`);
    }
  });
}

main().catch((error) => {
  console.error(error);
  setStatus(`error: ${error.message ?? error}`);
});
