// Compiled by tests/interop/test_langgraph_sdk.py with `tsc --noEmit`: js/langgraph-transport's declarations fit
// the SDK's own types (an AgentServerAdapter a StreamController accepts, a Client bindClient keeps).
import { Realtime } from 'ably';
import { Client } from '@langchain/langgraph-sdk';
import { StreamController } from '@langchain/langgraph-sdk/stream';

import { AblyAgentServerAdapter, bindClient, matches } from '../../../js/langgraph-transport/index.js';

const realtime = new Realtime({ key: 'app.key:secret', autoConnect: false });
const adapter = new AblyAgentServerAdapter({ realtime, threadId: 'thread-1', trustedAgents: ['agent'] });
const client: Client = bindClient(new Client({ apiUrl: 'http://localhost' }), adapter);
const controller = new StreamController({ assistantId: 'agent', threadId: 'thread-1', transport: adapter, client });
const handle = adapter.openEventStream({ channels: ['messages'], namespaces: [[]], depth: 1 });
const ready: Promise<void> = handle.ready;
const state = await adapter.getState();
const shown: boolean = matches({ type: 'event', method: 'values', params: { namespace: [], timestamp: 0, data: {} } },
  { channels: ['values'] });
export { controller, ready, state, shown };
