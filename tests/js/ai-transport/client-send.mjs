// A JS client session (Vercel UIMessage codec) that sends one user message and waits for the reply run.
//
// Env (plus the common ones in common.mjs):
//   SESSION              channel / session name                                   required
//   TEXT                 the user message text                                    default "Hello"
//   CLIENT_ID            Ably clientId of the client                              default js-client
//   MESSAGE_ID           UIMessage.id of the user message                         default a uuid
//   TIMEOUT_MS           how long to wait for the run to end                      default 20000
//   CANCEL_AFTER_CHARS   cancel the run (ClientRun.cancel) once the run's assistant text has
//                        at least this many characters (0 = as soon as it started)   default off
//   CANCEL_MODE          run (default): ClientRun.cancel(), an ai-cancel carrying input-codec-message-id;
//                        session: session.cancel(runId), an ai-cancel carrying only run-id
//   LOAD_HISTORY         1 (default): page in the session history before sending, so the send
//                        auto-parents on the existing conversation; 0: send without loading
//   SETTLE_MS            extra wait after the run ended, for late folds            default 200
//   EXTRA_PARTS          JSON array of more UIMessage parts after the text part, e.g.
//                        [{"type":"data-note","data":{"x":1}},{"type":"file","url":"https://x/y.png","mediaType":"image/png"}]
//                        (a multi-part user message is ONE array publish, one Ably message per part)
//   HISTORY_PAGE_SIZE    ClientSessionOptions.historyPageSize                      default 100 (SDK default)
//   WIRE                 1: also report every raw Ably message delivered live after connect
//
// stdout:
//   line 1  {"invocation":{"inputEventId","sessionName"},"inputCodecMessageId"}   right after the send
//   line 2  {"messages":[UIMessage...],"codecMessageIds":[...],"runs":[RunInfo...],"run":{...},
//            "lifecycle":[...],"cancelled":bool,"timedOut":bool,"wire"?:[...]}
// exit 0 when the run reached a terminal/suspended status, 2 on timeout, 1 on error.
import { randomUUID } from 'node:crypto';

import { createClientSession, createUIMessageCodec } from '@ably/ai-transport/vercel';

import {
  emit,
  env,
  errorJson,
  intEnv,
  log,
  main,
  realtime,
  recordWire,
  requireEnv,
  runInfoJson,
  sdkLogger,
  snapshot,
  TERMINAL,
  textOf,
  Timeout,
  viewJson,
  waitUntil,
  within,
} from './common.mjs';

const codec = createUIMessageCodec();

await main(async () => {
  const sessionName = requireEnv('SESSION');
  const text = env('TEXT', 'Hello');
  const timeoutMs = intEnv('TIMEOUT_MS', 20000);
  const cancelAfter = env('CANCEL_AFTER_CHARS') === undefined ? undefined : intEnv('CANCEL_AFTER_CHARS');
  const deadline = Date.now() + timeoutMs;
  const remaining = () => Math.max(1, deadline - Date.now());

  const client = realtime(env('CLIENT_ID', 'js-client'));
  const session = createClientSession({
    client,
    channelName: sessionName,
    logger: sdkLogger(),
    ...(env('HISTORY_PAGE_SIZE') ? { historyPageSize: intEnv('HISTORY_PAGE_SIZE') } : {}),
  });
  const sessionErrors = [];
  session.on('error', (error) => {
    log('session error:', errorJson(error));
    sessionErrors.push(errorJson(error));
  });
  const lifecycle = [];
  session.tree.on('run', (event) => lifecycle.push({ ...event, ...(event.error ? { error: errorJson(event.error) } : {}) }));

  await within(remaining(), 'session.connect()', session.connect());
  const wire = recordWire(client, sessionName);
  if (env('LOAD_HISTORY', '1') !== '0') {
    while (session.view.hasOlder()) {
      const page = await within(remaining(), 'view.loadOlder()', session.view.loadOlder(100));
      if (page.length === 0) break;
    }
  }

  const extraParts = JSON.parse(env('EXTRA_PARTS', '[]'));
  const message = { id: env('MESSAGE_ID', randomUUID()), role: 'user', parts: [{ type: 'text', text }, ...extraParts] };
  const run = await within(remaining(), 'view.send()', session.view.send(codec.createUserMessage(message)));
  emit({ invocation: run.toInvocation().toJSON(), inputCodecMessageId: run.inputCodecMessageId });
  log('sent', run.inputCodecMessageId, 'event', run.inputEventId);

  const assistantText = () =>
    run.messages
      .filter((m) => m.role === 'assistant')
      .map(textOf)
      .join('');
  let cancelled = false;
  let timedOut = false;
  try {
    await within(remaining(), 'run.started (ai-run-start)', run.started);
    log('started', run.runId);
    await waitUntil(
      () => {
        if (cancelAfter !== undefined && !cancelled && assistantText().length >= cancelAfter) {
          cancelled = true;
          log(`cancelling after ${assistantText().length} chars`);
          // run.cancel(): ai-cancel keyed by input-codec-message-id; session.cancel(runId): by run-id only.
          const cancel = env('CANCEL_MODE', 'run') === 'session' ? session.cancel(run.runId) : run.cancel();
          cancel.catch((error) => log('cancel failed:', errorJson(error)));
        }
        return TERMINAL.has(run.status) || run.status === 'suspended';
      },
      { ms: remaining(), what: 'the run to end', emitters: [session.tree, session.view] },
    );
    await new Promise((resolve) => setTimeout(resolve, intEnv('SETTLE_MS', 200)));
  } catch (error) {
    if (!(error instanceof Timeout)) throw error;
    log(String(error));
    timedOut = true;
  }

  const result = {
    ...viewJson(session.view),
    runs: session.view.runs().map(runInfoJson),
    run: {
      runId: run.runId,
      status: run.status,
      error: errorJson(run.error),
      inputEventId: run.inputEventId,
      inputCodecMessageId: run.inputCodecMessageId,
      text: assistantText(),
      messages: snapshot(run.messages),
    },
    lifecycle,
    cancelled,
    timedOut,
    ...(sessionErrors.length ? { sessionErrors } : {}),
    ...(wire ? { wire } : {}),
  };
  await session.close();
  return result;
});
