// The browser side of examples/langgraph-web: LangGraph's own React hook, `useStream` of @langchain/react, with an
// Ably channel for its server.
//
// The hook's transport is js/langgraph-transport's AblyAgentServerAdapter. It publishes the SDK's commands
// (run.start, ...) on the thread's channel, and reads the agent's protocol events from that channel, live and from
// history. The hook's `client` is a LangGraph SDK Client bound to the same adapter (`bindClient`), so `stop()`
// cancels the run over the channel and no request reaches a LangGraph server. The page never sees an API key:
// ably-js asks /api/token for a JWT limited to this thread's channel. On load the page asks the app for an agent
// on the thread (POST /api/threads/{id}/serve), which `serve_thread` answers from then on.
//
// esbuild bundles this file into bundle.js (`npm run build`; app.py does it when the bundle is missing or stale).
import { Client } from '@langchain/langgraph-sdk';
import { useStream } from '@langchain/react';
import * as Ably from 'ably';
import { Component, StrictMode, useMemo, useState } from 'react';
import { createRoot } from 'react-dom/client';

import { AblyAgentServerAdapter, bindClient } from '../../../js/langgraph-transport/index.js';

/** A thread's channel, as app.py's `channel_of` names it. */
const channelName = (threadId) => `threads:${threadId}`;

// crypto.randomUUID exists only in secure contexts (https, localhost); a LAN http address gets the fallback.
const uuid = () => (globalThis.crypto?.randomUUID ? crypto.randomUUID() : `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`);

/** The thread this tab shows: ?thread=..., else a new one, written into the URL so a reload returns to it. */
function threadOfPage() {
  const url = new URL(window.location.href);
  let threadId = url.searchParams.get('thread');
  if (!threadId) {
    threadId = uuid();
    url.searchParams.set('thread', threadId);
    window.history.replaceState(null, '', url);
  }
  return threadId;
}

/** This browser's Ably clientId, kept across reloads: only the run's owner may stop it (`serve_thread`'s default). */
function browserClientId() {
  let id = localStorage.getItem('ably-client-id');
  if (!id) {
    id = `user-${uuid().slice(0, 8)}`;
    localStorage.setItem('ably-client-id', id);
  }
  return id;
}

/** ably-js options: a token from /api/token, and the dev server /api/config names, if any (else Ably's defaults). */
function ablyOptions(config, clientId, threadId) {
  const authCallback = (_params, callback) => {
    fetch(`/api/token?clientId=${encodeURIComponent(clientId)}&thread=${encodeURIComponent(threadId)}`)
      .then((response) => (response.ok ? response.text() : Promise.reject(new Error(`token: HTTP ${response.status}`))))
      .then((token) => callback(null, token), (error) => callback(String(error), null));
  };
  const options = { authCallback, clientId };
  const dev = config.devServer;
  if (dev) {
    Object.assign(options, { endpoint: dev.host, tls: dev.tls, ...(dev.tls ? { tlsPort: dev.port } : { port: dev.port }) });
  }
  return options;
}

/** Ask the app for an agent on the thread; it answers once the agent hears commands. */
async function requestAgent(threadId) {
  const response = await fetch(`/api/threads/${encodeURIComponent(threadId)}/serve`, { method: 'POST' });
  if (!response.ok) throw new Error(`no agent for the thread (HTTP ${response.status}): ${await response.text()}`);
}

/**
 * The thread's adapter and the SDK client bound to it, made once per thread: useStream builds a new controller
 * (and reads the thread again) whenever the adapter object changes.
 */
function useAblyThread(realtime, threadId, agentClientId) {
  return useMemo(() => {
    const adapter = new AblyAgentServerAdapter({ realtime, threadId, channelName, trustedAgents: [agentClientId] });
    return { adapter, client: bindClient(new Client({ apiUrl: window.location.origin }), adapter) };
  }, [realtime, threadId, agentClientId]);
}

/** A LangChain message's text: its content string, or the text of its content blocks. */
function textOf(message) {
  const content = message.content;
  return typeof content === 'string' ? content : content.map((block) => block.text ?? '').join('');
}

function Message({ message }) {
  const type = message.getType();
  return (
    <li className={`message ${type}`}>
      <strong>{type === 'human' ? 'You' : 'Agent'}</strong>
      <p className="text">{textOf(message)}</p>
    </li>
  );
}

function statusOf(stream, stopped, clientId) {
  if (stream.error) return { text: `error: ${stream.error.message ?? stream.error}`, className: 'error' };
  if (stream.isThreadLoading) return { text: 'loading the thread from the channel…' };
  if (stream.isLoading) return { text: 'the agent is answering…' };
  // useStream drops a stopped run's unfinished answer: say why it went.
  if (stopped) return { text: 'stopped: the cancel went to the agent over the channel', className: 'stopped' };
  return { text: `connected as ${clientId}` };
}

function Chat({ realtime, threadId, clientId, agentClientId }) {
  const { adapter, client } = useAblyThread(realtime, threadId, agentClientId);
  // The types say `client?: never` beside a custom transport, but the controller's stop() cancels through it.
  const stream = useStream({ transport: adapter, assistantId: 'agent', threadId, client });
  const [draft, setDraft] = useState('');
  const [stopped, setStopped] = useState(false);
  const ready = !stream.isThreadLoading;
  const status = statusOf(stream, stopped, clientId);

  const send = (event) => {
    event.preventDefault();
    const text = draft.trim();
    if (!text) return;
    setDraft('');
    setStopped(false);
    void stream.submit({ messages: [{ type: 'human', content: text }] });  // failures land in stream.error
  };
  const stop = () => stream.stop().then(() => setStopped(true));

  return (
    <main data-ready={String(ready)} data-loading={String(stream.isLoading)}>
      <header>
        <h1>useStream on an Ably session</h1>
        <p>Thread <code>{threadId}</code>. Reload the page, or open its URL in another tab: the conversation comes
          back from the channel.</p>
      </header>
      <ul id="messages" aria-live="polite">
        {stream.messages.map((message, i) => <Message key={message.id ?? i} message={message} />)}
      </ul>
      <form id="composer" onSubmit={send}>
        <input id="input" placeholder="Ask the agent something" autoComplete="off" value={draft}
          onChange={(event) => setDraft(event.target.value)} disabled={!ready} />
        <button id="send" type="submit" disabled={!ready || stream.isLoading}>Send</button>
        <button id="stop" type="button" disabled={!stream.isLoading} onClick={stop}>Stop</button>
      </form>
      <div id="status" className={status.className}>{status.text}</div>
    </main>
  );
}

/** The error that broke rendering (a transport that cannot start, say), in place of a blank page. */
class Failure extends Component {
  state = { error: null };

  static getDerivedStateFromError(error) {
    return { error };
  }

  render() {
    const { error } = this.state;
    if (!error) return this.props.children;
    return <main><div id="status" className="error">error: {String(error.message ?? error)}</div></main>;
  }
}

/** A failure before the page rendered (no config, no token, no agent), in the page's status line. */
function showFailure(error) {
  console.error(error);
  const status = document.getElementById('status');
  status.className = 'error';
  status.textContent = `error: ${error.message ?? error}`;
}

async function main() {
  const threadId = threadOfPage();
  const clientId = browserClientId();
  const config = await (await fetch('/api/config')).json();
  const realtime = new Ably.Realtime(ablyOptions(config, clientId, threadId));
  // Close the connection when the page goes away: a reload then starts a fresh one and reads history.
  window.addEventListener('pagehide', () => realtime.close());
  await requestAgent(threadId);
  createRoot(document.getElementById('app')).render(
    <StrictMode>
      <Failure>
        <Chat realtime={realtime} threadId={threadId} clientId={clientId} agentClientId={config.agentClientId} />
      </Failure>
    </StrictMode>,
  );
}

main().catch(showFailure);
