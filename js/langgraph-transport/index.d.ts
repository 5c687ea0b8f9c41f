import type { Realtime } from 'ably';
import type { AgentServerAdapter, Client } from '@langchain/langgraph-sdk';
import type { Command, CommandResponse, ErrorResponse, Event, Message, SubscribeParams } from '@langchain/protocol';

/** What `openEventStream` returns (the SDK does not export the type by name). */
export type EventStreamHandle = ReturnType<NonNullable<AgentServerAdapter['openEventStream']>>;

export interface AblyAgentServerAdapterOptions {
  /** A connected ably-js client; its token decides what this device may publish. */
  realtime: Realtime;
  /** The thread; the SDK may bind one later through `setThreadId`. */
  threadId?: string;
  /** The channel of a thread (default: the thread id itself). */
  channelName?: (threadId: string) => string;
  /** How long `send` waits for the agent's answer before it rejects (default 15000). */
  commandTimeoutMs?: number;
  /** Ably clientIds whose events and answers are believed (default: anyone's on the channel). */
  trustedAgents?: string[];
}

/** The thread's state as `StreamController` hydrates it. */
export interface ThreadState<StateType = Record<string, unknown>> {
  values: StateType;
  next: string[];
  tasks: Array<{
    id: string;
    name: string;
    interrupts: Array<{ id: string; value: unknown }>;
    checkpoint: { checkpoint_ns: string };
  }>;
  checkpoint: { checkpoint_id: string } | null;
  metadata: { step?: number };
}

/** LangGraph's `AgentServerAdapter` on one Ably channel: one adapter per thread. */
export declare class AblyAgentServerAdapter implements AgentServerAdapter {
  threadId: string;
  constructor(options: AblyAgentServerAdapterOptions);
  setThreadId(threadId: string): void;
  open(): Promise<void>;
  send(command: Command): Promise<CommandResponse | ErrorResponse>;
  events(): AsyncIterable<Message>;
  openEventStream(params: SubscribeParams): EventStreamHandle;
  getState<StateType = Record<string, unknown>>(): Promise<ThreadState<StateType> | null>;
  /** Cancel a run wherever it runs (the agent's authorisation policy decides whether it may). */
  cancel(runId: string): Promise<void>;
  close(): Promise<void>;
}

/** Whether `event` belongs to a stream opened with `params`, as the SDK filters subscriptions. */
export declare function matches(event: Event, params: SubscribeParams): boolean;

/** `client` made to serve the thread over `adapter`: `stop()` cancels over the channel; state reads come from it. */
export declare function bindClient<T extends Client>(client: T, adapter: AblyAgentServerAdapter): T;
