// A JS client session (Vercel UIMessage codec) that joins SESSION late — possibly while a reply is
// still streaming — loads the history, and waits until WAIT_FOR_TEXT is complete in the view.
//
// Env (plus the common ones in common.mjs):
//   SESSION          channel / session name                                        required
//   WAIT_FOR_TEXT    wait until an assistant message's text contains this string, and the run that
//                    owns it is no longer active (complete/cancelled/error/suspended)
//                    default: wait until every visible run is no longer active
//   CLIENT_ID        Ably clientId                                                default js-joiner
//   TIMEOUT_MS       how long to wait                                             default 20000
//   SETTLE_MS        extra wait once the condition holds                         default 200
//   WIRE             1: also report every raw Ably message the channel delivered live
//   HISTORY_PAGE_SIZE  ClientSessionOptions.historyPageSize (default 100); small values force paging
//
// stdout: {"joined":true} once the history is loaded, then the result line
//   {"found":bool,"timedOut":bool,
//    "atJoin":{"messages":[...],"codecMessageIds":[...],"runs":[...]},   the view right after history loaded
//    "messages":[UIMessage...],"codecMessageIds":[...],"runs":[RunInfo...],  the view at the end
//    "wire"?:[{action,name,serial,version,data,extras}...]}
// exit 0 when found, 2 on timeout, 1 on error.
import { createClientSession } from '@ably/ai-transport/vercel';

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
  sleep,
  textOf,
  Timeout,
  viewJson,
  waitUntil,
  within,
} from './common.mjs';

await main(async () => {
  const sessionName = requireEnv('SESSION');
  const waitFor = env('WAIT_FOR_TEXT');
  const timeoutMs = intEnv('TIMEOUT_MS', 20000);
  const deadline = Date.now() + timeoutMs;
  const remaining = () => Math.max(1, deadline - Date.now());

  const client = realtime(env('CLIENT_ID', 'js-joiner'));
  const session = createClientSession({
    client,
    channelName: sessionName,
    logger: sdkLogger(),
    ...(env('HISTORY_PAGE_SIZE') ? { historyPageSize: intEnv('HISTORY_PAGE_SIZE') } : {}),
  });
  session.on('error', (error) => log('session error:', errorJson(error)));
  await within(remaining(), 'session.connect()', session.connect());
  const wire = recordWire(client, sessionName);
  const view = session.view;
  while (view.hasOlder()) {
    const page = await within(remaining(), 'view.loadOlder()', view.loadOlder(100));
    if (page.length === 0) break;
  }
  const atJoin = { ...viewJson(view), runs: view.runs().map(runInfoJson) };
  log('joined; visible messages:', atJoin.messages.length);
  emit({ joined: true });

  const settled = (info) => info && info.status !== 'active';
  const condition = () => {
    if (waitFor === undefined) {
      const runs = view.runs();
      return runs.length > 0 && runs.every(settled);
    }
    return view
      .getMessages()
      .some(({ codecMessageId, message }) => message.role === 'assistant' && textOf(message).includes(waitFor) && settled(view.runOf(codecMessageId)));
  };

  let found = false;
  let timedOut = false;
  try {
    await waitUntil(condition, { ms: remaining(), what: `WAIT_FOR_TEXT ${JSON.stringify(waitFor)}`, emitters: [session.tree, view] });
    found = true;
    await sleep(intEnv('SETTLE_MS', 200));
  } catch (error) {
    if (!(error instanceof Timeout)) throw error;
    log(String(error));
    timedOut = true;
  }

  const result = {
    found,
    timedOut,
    atJoin,
    ...viewJson(view),
    runs: view.runs().map(runInfoJson),
    ...(wire ? { wire } : {}),
  };
  await session.close();
  return result;
});
