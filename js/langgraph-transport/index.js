// LangGraph's StreamController / useStream on an Ably channel.
//
// `AblyAgentServerAdapter` implements `AgentServerAdapter` of `@langchain/langgraph-sdk` 1.15.0 on ably-js 2.x, for a
// thread that `langchain_ably_transport.graph.serve_thread` serves (docs/langgraph-protocol.md). The channel is the
// thread: the agent publishes batches of protocol events (`lg-events`), clients publish commands (`lg-command`) and
// the agent answers each (`lg-response`). Everything lives in channel history, so a reload, a second device or a
// process restart replays the same events. No runtime dependency: the caller hands in its `Ably.Realtime`.

const COMMAND = 'lg-command';
const RESPONSE = 'lg-response';
const EVENTS = 'lg-events';
const CANCEL = 'ai-cancel';
const RUN_END = 'ai-run-end';
const KEY = 'command-key';
const EVENT_ID = 'event-id';
const PART = 'part';
const PARTS = 'parts';
const RUN_ID = 'run-id';
const RUN_REASON = 'run-reason';
const ERROR_MESSAGE = 'error-message';
const HISTORY_PAGE = 100;
const AGENT_NAMES = new Set([RESPONSE, EVENTS, RUN_END]);
const CHANNELS = new Map([
  ['values', 'values'], ['checkpoints', 'checkpoints'], ['updates', 'updates'], ['messages', 'messages'],
  ['tools', 'tools'], ['lifecycle', 'lifecycle'], ['input.requested', 'input'], ['input.answered', 'input'],
  ['tasks', 'tasks'],
]);

/** The transport tier of a message's extras (an empty object when it has none). */
function transportOf(message) {
  return message?.extras?.ai?.transport ?? {};
}

function isRoot(event) {
  return Array.isArray(event?.params?.namespace) && event.params.namespace.length === 0;
}

function isEvent(value) {
  return value !== null && typeof value === 'object' && value.type === 'event' && typeof value.method === 'string'
    && value.params !== null && typeof value.params === 'object' && Array.isArray(value.params.namespace);
}

/** The subscription channel of an event, as the SDK names it (`custom` events by their name). */
function channelOf(event) {
  if (event.method === 'custom') return event.params.data?.name != null ? `custom:${event.params.data.name}` : 'custom';
  if (event.method.startsWith('custom:')) return event.method;
  return CHANNELS.get(event.method);
}

function segmentMatches(segment, candidate) {
  return candidate === segment || (!segment.includes(':') && candidate?.split(':')[0] === segment);
}

/** Whether `event` belongs to a stream opened with `params` (`channels`, `namespaces` prefixes, `depth`). */
export function matches(event, params) {
  const channel = channelOf(event);
  if (channel === undefined) return false;
  if (!params.channels.includes(channel) && !(channel.startsWith('custom:') && params.channels.includes('custom'))) {
    return false;
  }
  const namespace = event.params.namespace;
  if (!params.namespaces || params.namespaces.length === 0) return true;
  return params.namespaces.some((prefix) => prefix.length <= namespace.length
    && prefix.every((segment, i) => segmentMatches(segment, namespace[i]))
    && (params.depth === undefined || namespace.length - prefix.length <= params.depth));
}

/** An async iterable fed by `push`, ended by `end`. */
class EventQueue {
  #items = [];
  #wake = null;
  #ended = false;

  push(item) {
    this.#items.push(item);
    this.#wake?.();
  }

  end() {
    this.#ended = true;
    this.#wake?.();
  }

  async *[Symbol.asyncIterator]() {
    while (true) {
      while (this.#items.length) yield this.#items.shift();
      if (this.#ended) return;
      await new Promise((resolve) => { this.#wake = resolve; });
      this.#wake = null;
    }
  }
}

/** The events of `lg-events` messages in channel order: batches as they are, a large event's parts joined. */
class EventReader {
  #parts = new Map();

  /** The events `message` completes (none for a part that is not the last one seen, or a malformed message). */
  read(message) {
    const transport = transportOf(message);
    if (transport[PART] !== undefined) return this.#part(message, transport);
    const data = typeof message.data === 'string' ? safeParse(message.data) : message.data;
    return Array.isArray(data?.events) ? data.events.filter(isEvent) : [];
  }

  #part(message, transport) {
    const eventId = transport[EVENT_ID];
    const index = Number(transport[PART]);
    const total = Number(transport[PARTS]);
    if (!eventId || !Number.isInteger(index) || !Number.isInteger(total) || typeof message.data !== 'string') return [];
    const parts = this.#parts.get(eventId) ?? new Map();
    this.#parts.set(eventId, parts.set(index, message.data));
    if (parts.size < total) return [];
    this.#parts.delete(eventId);
    const event = safeParse([...parts.keys()].sort((a, b) => a - b).map((i) => parts.get(i)).join(''));
    return isEvent(event) ? [event] : [];
  }
}

function safeParse(text) {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** 16 random hex digits (`getRandomValues` works on plain-http pages, where `randomUUID` does not exist). */
function randomId() {
  return Array.from(globalThis.crypto.getRandomValues(new Uint8Array(8)), (b) => b.toString(16).padStart(2, '0'))
    .join('');
}

/**
 * The thread as a LangGraph `AgentServerAdapter` over one Ably channel. One adapter per thread: the SDK reads
 * `getState()` before it binds a new thread id, so an app that switches threads makes a new adapter.
 */
export class AblyAgentServerAdapter {
  #realtime;
  #channelName;
  #timeoutMs;
  #trusted;
  #nonce = randomId();
  #channel = null;
  #opening = null;
  #held = null;
  #older = null;
  #reader = new EventReader();
  #buffer = [];
  #seen = new Set();
  #streams = new Set();
  #waiting = new Map();
  #listener = (message) => (this.#held ? this.#held.push(message) : this.#take(message));
  #onAttached = (change) => {
    if (!change.resumed && this.#held === null && this.#channel) this.#recover();
  };

  /**
   * @param {object} options
   * @param {import('ably').Realtime} options.realtime  a connected ably-js client (its token decides what it may do)
   * @param {string} [options.threadId]  the thread; the SDK may bind one later (`setThreadId`)
   * @param {(threadId: string) => string} [options.channelName]  the channel of a thread (default: its id)
   * @param {number} [options.commandTimeoutMs]  how long `send` waits for the agent's answer (default 15000)
   * @param {string[]} [options.trustedAgents]  clientIds whose events and answers are believed (default: anyone's)
   */
  constructor({ realtime, threadId, channelName = (id) => id, commandTimeoutMs = 15000, trustedAgents } = {}) {
    if (!realtime) throw new TypeError('AblyAgentServerAdapter needs an Ably.Realtime client (`realtime`)');
    this.#realtime = realtime;
    this.threadId = threadId ?? '';
    this.#channelName = channelName;
    this.#timeoutMs = commandTimeoutMs;
    this.#trusted = trustedAgents ? new Set(trustedAgents) : null;
  }

  setThreadId(threadId) {
    if (threadId === this.threadId) return;
    void this.close();
    this.threadId = threadId;
  }

  /**
   * Attach, then read history back to the start of the thread's newest run: what every stream replays first. An
   * open that fails is tried again by the next call.
   */
  open() {
    if (!this.threadId) return Promise.reject(new Error('no thread id: pass `threadId`, or let the SDK bind one'));
    this.#opening ??= this.#attach().catch((error) => {
      this.#channel?.unsubscribe(this.#listener);
      this.#channel = this.#opening = this.#held = null;
      throw error;
    });
    return this.#opening;
  }

  async #attach() {
    const channel = this.#channel = this.#realtime.channels.get(this.#channelName(this.threadId));
    this.#held = [];
    await channel.subscribe(this.#listener);
    const older = await this.#backfill(channel);
    if (this.#channel !== channel) return;  // closed, or bound to another thread, meanwhile
    this.#older = older;
    channel.on('attached', this.#onAttached);
  }

  /**
   * Fold history before the attach point back to the newest run's start, or to an event already folded, then
   * what arrived live meanwhile (held until then): no gap, no duplicate. The page that goes on further back.
   */
  async #backfill(channel) {
    const newestFirst = [];
    let page = await channel.history({ untilAttach: true, limit: HISTORY_PAGE });
    while (page) {
      newestFirst.push(...page.items);
      if (page.items.some((m) => m.name === EVENTS && this.#believed(m) && this.#reaches(m)) || !page.hasNext()) break;
      page = await page.next();
    }
    for (const message of newestFirst.reverse()) this.#take(message);
    const held = this.#held;
    this.#held = null;
    for (const message of held) this.#take(message);
    return page?.hasNext() ? page : null;
  }

  /** The channel re-attached without continuity (offline past Ably's 2-minute resume window): read what it missed. */
  #recover() {
    const channel = this.#channel;
    this.#held = [];
    this.#backfill(channel).catch((error) => {
      console.warn(`thread ${this.threadId}: events missed while detached could not be read: ${error?.message}`);
      const held = this.#held ?? [];
      this.#held = null;
      for (const message of held) this.#take(message);
    });
  }

  /** Whether `message` starts the newest run, or holds an event already folded: history need go no further. */
  #reaches(message) {
    const data = typeof message.data === 'string' ? undefined : message.data;
    return this.#startsRun(message) || (data?.events ?? []).some((e) => this.#seen.has(e?.event_id));
  }

  #startsRun(message) {
    const data = typeof message.data === 'string' ? undefined : message.data;
    return (data?.events ?? []).some((e) => isEvent(e) && isRoot(e) && e.method === 'lifecycle'
      && e.params.data?.event === 'running');
  }

  #believed(message) {
    return !this.#trusted || this.#trusted.has(message.clientId);
  }

  #take(message) {
    if (AGENT_NAMES.has(message.name) && !this.#believed(message)) {
      console.warn(`ignored ${message.name} from ${message.clientId}: not a trusted agent of thread ${this.threadId}`);
    } else if (message.name === RESPONSE) {  // an answer read from history (after a gap) counts as well
      this.#waiting.get(transportOf(message)[KEY])?.(message.data);
    } else if (message.name === EVENTS) {
      for (const event of this.#reader.read(message)) this.#add(event);
    } else if (message.name === RUN_END) {
      this.#endedWithoutTerminal(transportOf(message));
    }
  }

  #add(event) {
    if (event.event_id !== undefined) {
      if (this.#seen.has(event.event_id)) return;
      this.#seen.add(event.event_id);
    }
    if (isRoot(event) && event.method === 'lifecycle' && event.params.data?.event === 'running') {
      this.#buffer = [];  // a stream replays the thread's newest run, as a server's buffer would
    }
    this.#buffer.push(event);
    for (const stream of this.#streams) if (matches(event, stream.params)) stream.queue.push(event);
  }

  /** A run ended `error` by the session (its agent died) with no terminal event: tell the SDK it failed. */
  #endedWithoutTerminal(transport) {
    const runId = transport[RUN_ID];
    const reason = transport[RUN_REASON] ?? 'complete';
    const last = this.#buffer.findLast((e) => isRoot(e) && e.method === 'lifecycle');
    if (reason === 'complete' || !runId || last?.params.data?.event !== 'running'
      || !String(last.event_id ?? '').startsWith(`synth:${runId}:`)) return;
    this.#add({
      type: 'event', event_id: `synth:${runId}:ended`, method: 'lifecycle',
      params: { namespace: [], timestamp: Date.now(),
        data: { event: 'failed', error: transport[ERROR_MESSAGE] ?? `the run ended: ${reason}` } },
    });
  }

  /** Publish `command` and return the agent's answer; an error (no agent, a timeout) rejects. */
  async send(command) {
    await this.open();
    const key = `${this.#nonce}-${command.id}`;
    let timer;
    const answer = new Promise((resolve, reject) => {
      timer = setTimeout(() => reject(new Error(
        `no answer to ${command.method} within ${this.#timeoutMs} ms: is an agent serving thread ${this.threadId}?`,
      )), this.#timeoutMs);
      this.#waiting.set(key, resolve);
    }).finally(() => {
      clearTimeout(timer);
      this.#waiting.delete(key);
    });
    const data = JSON.parse(JSON.stringify(command));
    await Promise.all([answer, this.#channel.publish({ name: COMMAND, data, extras: { ai: { transport: { [KEY]: key } } } })]);
    return answer;
  }

  /** Unused: `openEventStream` serves every subscription. */
  events() {
    return (async function* none() {})();
  }

  /** The newest run's events that match `params`, then the live ones, until `close()`. */
  openEventStream(params) {
    const stream = { params, queue: new EventQueue() };
    const ready = this.open().then(() => {
      for (const event of this.#buffer) if (matches(event, params)) stream.queue.push(event);
      this.#streams.add(stream);
    });
    return {
      events: stream.queue,
      ready,
      close: () => {
        this.#streams.delete(stream);
        stream.queue.end();
      },
    };
  }

  /**
   * The thread's state as the SDK hydrates it: the newest root `values`, the pending interrupts of a run that
   * ended interrupted, and `next` non-empty while a run streams. Null for a thread with no events yet.
   */
  async getState() {
    await this.open();
    const events = this.#buffer;
    const newest = (method) => events.findLast((e) => isRoot(e) && e.method === method);
    const values = newest('values') ?? await this.#olderRootValues();
    if (!values && events.length === 0) return null;
    const status = newest('lifecycle')?.params.data?.event;
    const checkpoint = newest('checkpoints')?.params.data;
    return {
      values: values?.params.data ?? {},
      next: status === 'running' ? ['__running__'] : [],
      tasks: status === 'interrupted' ? this.#pendingInterrupts(events) : [],
      checkpoint: checkpoint?.id ? { checkpoint_id: checkpoint.id } : null,
      metadata: checkpoint ? { step: checkpoint.step } : {},
    };
  }

  #pendingInterrupts(events) {
    const answered = new Set(events.filter((e) => e.method === 'input.answered')
      .flatMap((e) => e.params.data?.interrupt_ids ?? []));
    const byNamespace = new Map();
    for (const e of events) {
      const id = e.params.data?.interrupt_id;
      if (e.method !== 'input.requested' || answered.has(id)) continue;
      const key = e.params.namespace.join('|');
      byNamespace.set(key, [...(byNamespace.get(key) ?? []), { id, value: e.params.data.payload }]);
    }
    return [...byNamespace].map(([ns, interrupts]) => ({
      id: `interrupts:${ns}`, name: 'interrupt', interrupts, checkpoint: { checkpoint_ns: ns },
    }));
  }

  /** The newest root `values` before the newest run (one that failed early has none), from older history. */
  async #olderRootValues() {
    const reader = new EventReader();
    while (this.#older) {
      const page = await this.#older.next();
      this.#older = page?.hasNext() ? page : null;
      for (const message of page?.items ?? []) {
        if (message.name !== EVENTS || !this.#believed(message)) continue;
        const found = reader.read(message).findLast((e) => isRoot(e) && e.method === 'values');
        if (found) return found;
      }
    }
    return undefined;
  }

  /** Cancel `runId` wherever it runs, as any device may (the agent's `authorize` decides). */
  async cancel(runId) {
    await this.open();
    await this.#channel.publish({ name: CANCEL, extras: { ai: { transport: { [RUN_ID]: runId, [EVENT_ID]: randomId() } } } });
  }

  /** Detach and forget the thread; the adapter can be opened again (the SDK reuses it after a thread switch). */
  async close() {
    const channel = this.#channel;
    for (const stream of this.#streams) stream.queue.end();
    this.#streams.clear();
    this.#channel = this.#opening = this.#held = this.#older = null;
    this.#buffer = [];
    this.#seen = new Set();
    this.#reader = new EventReader();
    if (!channel) return;
    channel.off('attached', this.#onAttached);
    channel.unsubscribe(this.#listener);
    await channel.detach().catch(() => {});
  }
}

/**
 * `client` (a `Client` of `@langchain/langgraph-sdk`) made to serve the thread over `adapter`: `stop()` cancels
 * through the channel instead of POSTing to a LangGraph server, and state reads come from the channel.
 */
export function bindClient(client, adapter) {
  client.runs.cancel = async (_threadId, runId) => adapter.cancel(runId);
  client.threads.getState = async () => adapter.getState();
  client.threads.getHistory = async () => [];
  return client;
}
