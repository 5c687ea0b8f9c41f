// A scripted JS agent (Vercel UIMessage codec): answers one invocation with a streamed text reply.
//
// Env (plus the common ones in common.mjs):
//   INVOCATION     JSON {"inputEventId","sessionName"} (a client-send "invocation" value)   required
//   REPLY          the assistant text to stream                 default "Hello from the JS agent."
//   DELAY_MS       pause before each text-delta                 default 20
//   DELTA_CHARS    split REPLY into deltas of this many chars; default: word by word
//   CLIENT_ID      Ably clientId of the agent                   default js-agent
//   OUTCOME        complete (default) | error | suspend: how the run ends if not cancelled
//   TIMEOUT_MS     limit for locating the trigger and for the whole answer   default 20000
//   LOAD_HISTORY   1 (default): page run.view back through history before start (the README flow)
//   HISTORY_PAGE_SIZE  AgentSessionOptions.historyPageSize (default 100)
//
// The chunk stream is start, start-step, text-start, text-delta..., text-end, finish-step,
// finish (finishReason stop). A client cancel fires run.abortSignal; pipe() then closes the text
// stream as cancelled and the run ends {reason:'cancelled'}.
//
// stdout: one line {"runId","invocationId","pipe":{reason,error},"outcome","deltasSent",
//                    "conversation":[UIMessage...] (run.view at start: the context an LLM would get),
//                    "conversationIds":[...],"runMessages":[...] (run.messages at the end)}
import { Invocation } from '@ably/ai-transport';
import { createAgentSession } from '@ably/ai-transport/vercel';

import { Ably, env, errorJson, intEnv, log, main, realtime, requireEnv, sdkLogger, sleep, within } from './common.mjs';

function splitReply(reply, size) {
  if (size > 0) {
    const parts = [];
    for (let i = 0; i < reply.length; i += size) parts.push(reply.slice(i, i + size));
    return parts;
  }
  return reply.match(/\s*\S+\s*|\s+/g) ?? [];
}

await main(async () => {
  const invocation = Invocation.fromJSON(JSON.parse(requireEnv('INVOCATION')));
  const reply = env('REPLY', 'Hello from the JS agent.');
  const delayMs = intEnv('DELAY_MS', 20);
  const outcome = env('OUTCOME', 'complete');
  const timeoutMs = intEnv('TIMEOUT_MS', 20000);
  const deadline = Date.now() + timeoutMs;
  const remaining = () => Math.max(1, deadline - Date.now());

  const client = realtime(env('CLIENT_ID', 'js-agent'));
  const session = createAgentSession({
    client,
    channelName: invocation.sessionName,
    logger: sdkLogger(),
    ...(env('HISTORY_PAGE_SIZE') ? { historyPageSize: intEnv('HISTORY_PAGE_SIZE') } : {}),
  });
  session.on('error', (error) => log('session error:', errorJson(error)));
  await within(remaining(), 'session.connect()', session.connect());

  const runErrors = [];
  const run = session.createRun(invocation, undefined, {
    onError: (error) => {
      log('run error:', errorJson(error));
      runErrors.push(errorJson(error));
    },
  });
  log('created run', run.runId, 'invocation', run.invocationId);
  if (env('LOAD_HISTORY', '1') !== '0') {
    while (run.view.hasOlder()) {
      const page = await within(remaining(), 'run.view.loadOlder()', run.view.loadOlder());
      if (page.length === 0) break;
    }
  }
  await within(remaining(), `locating the trigger ${invocation.inputEventId}`, run.located);
  await within(remaining(), 'run.start()', run.start());
  const conversation = run.view.getMessages();
  log('started; conversation has', conversation.length, 'messages');

  const deltas = splitReply(reply, intEnv('DELTA_CHARS', 0));
  let deltasSent = 0;
  const textId = 'text-0';
  async function* chunks() {
    yield { type: 'start' };
    yield { type: 'start-step' };
    yield { type: 'text-start', id: textId };
    for (const delta of deltas) {
      if (delayMs > 0) await sleep(delayMs);
      if (run.abortSignal.aborted) return;
      deltasSent += 1;
      yield { type: 'text-delta', id: textId, delta };
    }
    yield { type: 'text-end', id: textId };
    yield { type: 'finish-step' };
    yield { type: 'finish', finishReason: 'stop' };
  }
  const pipeResult = await within(remaining(), 'run.pipe()', run.pipe(chunks()));
  log('pipe ended', pipeResult.reason);

  let ended;
  if (pipeResult.reason === 'cancelled' || run.abortSignal.aborted) {
    ended = 'cancelled';
    await run.end({ reason: 'cancelled' });
  } else if (pipeResult.reason === 'error' || outcome === 'error') {
    ended = 'error';
    await run.end({ reason: 'error', error: new Ably.ErrorInfo('scripted agent error', 104008, 500) });
  } else if (outcome === 'suspend') {
    ended = 'suspend';
    await run.suspend();
  } else {
    ended = 'complete';
    await run.end({ reason: 'complete' });
  }

  const result = {
    runId: run.runId,
    invocationId: run.invocationId,
    pipe: { reason: pipeResult.reason, ...(pipeResult.error ? { error: errorJson(pipeResult.error) } : {}) },
    outcome: ended,
    deltasSent,
    conversation: conversation.map((entry) => entry.message),
    conversationIds: conversation.map((entry) => entry.codecMessageId),
    runMessages: run.messages,
    ...(runErrors.length ? { runErrors } : {}),
  };
  // Nothing is open any more, so end() publishes nothing further; it detaches the channel.
  await session.end();
  return result;
});
