// A JS client session (Vercel UIMessage codec) that sends one user message, waits for the run to suspend on a
// tool call awaiting approval, answers it with a tool-approval-response sent into the run, and waits for the
// run to end.
//
// Env (plus the common ones in common.mjs):
//   SESSION      channel / session name                                          required
//   TEXT         the user message text                                           default "Deploy to prod"
//   APPROVED     1 (default): approve every requested tool call; 0: deny them
//   REASON       the denial's reason                                             default none
//   CLIENT_ID    Ably clientId of the client                                     default js-client
//   TIMEOUT_MS   how long to wait for each of the two runs                       default 20000
//   SETTLE_MS    extra wait after the run ended, for late folds                   default 200
//
// The approval is sent the way a ChatTransport continuation sends it: view.send() of
// codec.createToolApprovalResponse(<assistant codec-message-id>, {toolCallId, approved, reason?}) with
// {runId}, so the agent publishes ai-run-resume. All requested calls are answered in ONE send (one input event).
//
// stdout:
//   line 1  {"step":"send","invocation":{...},"inputCodecMessageId"}
//   line 2  {"step":"approve","invocation":{...},"runId","codecMessageId","approvals":[{toolCallId,approvalId}],
//            "suspended":{"messages":[...]}}                    the view when the run suspended
//   line 3  {"messages":[...],"codecMessageIds":[...],"runs":[...],"run":{runId,status,text},
//            "lifecycle":[...],"timedOut":bool}
// exit 0 when the run ended, 2 on timeout, 1 on error.
import { createClientSession, createUIMessageCodec } from '@ably/ai-transport/vercel';

import {
  emit,
  env,
  errorJson,
  intEnv,
  log,
  main,
  realtime,
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

/** The view's tool parts waiting for approval: [{codecMessageId, part}]. */
function pendingApprovals(view) {
  return view.getMessages().flatMap((entry) =>
    (entry.message.parts ?? [])
      .filter((part) => part.type?.startsWith('tool-') && part.state === 'approval-requested')
      .map((part) => ({ codecMessageId: entry.codecMessageId, part })),
  );
}

await main(async () => {
  const sessionName = requireEnv('SESSION');
  const timeoutMs = intEnv('TIMEOUT_MS', 20000);
  const approved = env('APPROVED', '1') !== '0';
  const reason = env('REASON');

  const client = realtime(env('CLIENT_ID', 'js-client'));
  const session = createClientSession({ client, channelName: sessionName, logger: sdkLogger() });
  session.on('error', (error) => log('session error:', errorJson(error)));
  const lifecycle = [];
  session.tree.on('run', (event) => lifecycle.push({ ...event, ...(event.error ? { error: errorJson(event.error) } : {}) }));
  await within(timeoutMs, 'session.connect()', session.connect());

  const message = { id: crypto.randomUUID(), role: 'user', parts: [{ type: 'text', text: env('TEXT', 'Deploy to prod') }] };
  const run = await within(timeoutMs, 'view.send()', session.view.send(codec.createUserMessage(message)));
  emit({ step: 'send', invocation: run.toInvocation().toJSON(), inputCodecMessageId: run.inputCodecMessageId });

  let timedOut = false;
  let resumed;
  try {
    await within(timeoutMs, 'run.started (ai-run-start)', run.started);
    await waitUntil(() => run.status === 'suspended' && pendingApprovals(session.view).length > 0, {
      ms: timeoutMs,
      what: 'the run to suspend on an approval request',
      emitters: [session.tree, session.view],
    });
    const pending = pendingApprovals(session.view);
    const codecMessageId = pending[0].codecMessageId;
    const inputs = pending.map(({ part }) =>
      codec.createToolApprovalResponse(codecMessageId, {
        toolCallId: part.toolCallId,
        approved,
        ...(reason === undefined ? {} : { reason }),
      }),
    );
    resumed = await within(timeoutMs, 'view.send(approvals)', session.view.send(inputs, { runId: run.runId }));
    emit({
      step: 'approve',
      invocation: resumed.toInvocation().toJSON(),
      runId: run.runId,
      codecMessageId,
      approvals: pending.map(({ part }) => ({ toolCallId: part.toolCallId, approvalId: part.approval?.id })),
      suspended: { messages: pending.map(({ part }) => snapshot(part)) },
    });
    await within(timeoutMs, 'resumed.started (ai-run-resume)', resumed.started);
    await waitUntil(() => TERMINAL.has(run.status) || TERMINAL.has(session.view.run?.(run.runId)?.status), {
      ms: timeoutMs,
      what: 'the resumed run to end',
      emitters: [session.tree, session.view],
    });
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
      text: session.view.getMessages().filter((e) => e.message.role === 'assistant').map((e) => textOf(e.message)).join(''),
    },
    lifecycle,
    timedOut,
  };
  await session.close();
  return result;
});
