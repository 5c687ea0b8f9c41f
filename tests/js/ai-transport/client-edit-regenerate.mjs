// A JS client session (Vercel UIMessage codec) that builds a branched conversation:
//   1. send      TEXT                       -> wait for the reply run to end
//   2. edit      the first user message with EDIT_TEXT (view.edit: a fork-of sibling) -> wait
//   3. regenerate the assistant reply visible after the edit (view.regenerate) -> wait
// and then reports the branch structure the SDK exposes (ClientView.branchSelection).
//
// Each step publishes an input that an agent must answer: the script prints that step's invocation
// line at once and waits for the run to end before the next step.
//
// Env (plus the common ones in common.mjs):
//   SESSION        channel / session name                                required
//   TEXT           first user message                                     default "First question"
//   EDIT_TEXT      replacement text of the edit                            default "Edited question"
//   REGENERATE     which assistant reply to regenerate: edit (default: the reply to the edit, the one
//                  visible after step 2) | first (switches the user branch back to the original
//                  message first and regenerates its reply)
//   CLIENT_ID      Ably clientId                                          default js-client
//   TIMEOUT_MS     per-run wait for the run to end                         default 20000
//   SETTLE_MS      extra wait after each run ended                         default 200
//
// stdout:
//   {"step":"send"|"edit"|"regenerate","invocation":{inputEventId,sessionName},"inputCodecMessageId",
//    "target"?: the edited / regenerated codec-message-id}         one line per step, right after the send
//   final line:
//   {"steps":[{step,runId,status,inputCodecMessageId,text}],
//    "messages":[...],"codecMessageIds":[...],            the visible branch at the end
//    "anchors":[{position,codecMessageId,role,text,hasSiblings,index,siblingCount,siblings:[{id,role,text}]}],
//    "branches":[{path:[{position,index,of}],messages:[{codecMessageId,role,text}]}],   every leaf branch
//    "runs":[RunInfo...], "nodes":[tree nodes of every codec-message-id seen], "timedOut":bool}
// exit 0 when every run ended, 2 on a timeout, 1 on error.
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
  requireEnv,
  runInfoJson,
  sdkLogger,
  sleep,
  TERMINAL,
  textOf,
  Timeout,
  viewJson,
  waitUntil,
  within,
} from './common.mjs';

const codec = createUIMessageCodec();
const userMessage = (text) => codec.createUserMessage({ id: randomUUID(), role: 'user', parts: [{ type: 'text', text }] });

/** Every leaf branch of `view`, selecting each sibling of each anchor in turn (depth first). */
function enumerateBranches(view, from = 0, path = [], out = []) {
  const messages = view.getMessages();
  for (let position = from; position < messages.length; position += 1) {
    const anchor = view.branchSelection(messages[position].codecMessageId);
    if (!anchor.hasSiblings) continue;
    const original = anchor.index;
    const count = anchor.siblings.length;
    for (let index = 0; index < count; index += 1) {
      view.branchSelection(view.getMessages()[position].codecMessageId).select(index);
      enumerateBranches(view, position + 1, [...path, { position, index, of: count }], out);
    }
    view.branchSelection(view.getMessages()[position].codecMessageId).select(original);
    return out;
  }
  out.push({
    path,
    messages: messages.map(({ codecMessageId, message }) => ({ codecMessageId, role: message.role, text: textOf(message) })),
  });
  return out;
}

function anchorsOf(view) {
  return view.getMessages().map(({ codecMessageId, message }, position) => {
    const handle = view.branchSelection(codecMessageId);
    return {
      position,
      codecMessageId,
      role: message.role,
      text: textOf(message),
      hasSiblings: handle.hasSiblings,
      index: handle.index,
      siblingCount: handle.siblings.length,
      siblings: handle.siblings.map((sibling) => ({ id: sibling.id, role: sibling.role, text: textOf(sibling) })),
    };
  });
}

function nodeJson(node) {
  if (!node) return undefined;
  if (node.kind === 'input') {
    const { projection: _p, ...rest } = node;
    return rest;
  }
  const { projection: _p, state, steps: _s, ...rest } = node;
  return { ...rest, status: state.status, ...(state.error ? { error: errorJson(state.error) } : {}) };
}

await main(
  async () => {
    const sessionName = requireEnv('SESSION');
    const timeoutMs = intEnv('TIMEOUT_MS', 20000);
    const settleMs = intEnv('SETTLE_MS', 200);
    const regenerateWhich = env('REGENERATE', 'edit');

    const client = realtime(env('CLIENT_ID', 'js-client'));
    const session = createClientSession({ client, channelName: sessionName, logger: sdkLogger() });
    session.on('error', (error) => log('session error:', errorJson(error)));
    await within(timeoutMs, 'session.connect()', session.connect());
    const view = session.view;
    const seenIds = new Set();
    const steps = [];
    let timedOut = false;

    async function step(name, target, action) {
      const run = await within(timeoutMs, `${name}()`, action());
      emit({ step: name, invocation: run.toInvocation().toJSON(), inputCodecMessageId: run.inputCodecMessageId, ...(target ? { target } : {}) });
      log(name, 'published', run.inputCodecMessageId);
      const record = { step: name, inputCodecMessageId: run.inputCodecMessageId, ...(target ? { target } : {}) };
      steps.push(record);
      try {
        await within(timeoutMs, `${name}: run.started`, run.started);
        await waitUntil(() => TERMINAL.has(run.status) || run.status === 'suspended', {
          ms: timeoutMs,
          what: `${name}: the run to end`,
          emitters: [session.tree, view],
        });
        await sleep(settleMs);
      } catch (error) {
        if (!(error instanceof Timeout)) throw error;
        log(String(error));
        timedOut = true;
      }
      Object.assign(record, {
        runId: run.runId,
        status: run.status,
        error: errorJson(run.error),
        text: run.messages.filter((m) => m.role === 'assistant').map(textOf).join(''),
      });
      for (const { codecMessageId } of view.getMessages()) seenIds.add(codecMessageId);
      return run;
    }

    // 1. A fresh send.
    const first = await step('send', undefined, () => view.send(userMessage(env('TEXT', 'First question'))));
    if (timedOut) return { steps, ...viewJson(view), timedOut };
    const firstUserId = first.inputCodecMessageId;

    // 2. Edit the first user message: a sibling input with fork-of = firstUserId.
    await step('edit', firstUserId, () => view.edit(firstUserId, userMessage(env('EDIT_TEXT', 'Edited question'))));
    if (timedOut) return { steps, ...viewJson(view), timedOut };

    // 3. Regenerate an assistant reply: a new reply run on the same user input.
    if (regenerateWhich === 'first') {
      // Navigate the user-message anchor back to the original prompt, whose reply then shows.
      const position = view.getMessages().findIndex((m) => m.message.role === 'user');
      const handle = view.branchSelection(view.getMessages()[position].codecMessageId);
      const originalIndex = handle.siblings.findIndex((s) => textOf(s) === env('TEXT', 'First question'));
      handle.select(originalIndex < 0 ? 0 : originalIndex);
    }
    const assistant = view.getMessages().findLast((m) => m.message.role === 'assistant');
    if (!assistant) throw new Error('no assistant message visible to regenerate');
    await step('regenerate', assistant.codecMessageId, () => view.regenerate(assistant.codecMessageId));

    for (const { codecMessageId } of view.getMessages()) seenIds.add(codecMessageId);
    const branches = enumerateBranches(view);
    for (const branch of branches) for (const { codecMessageId } of branch.messages) seenIds.add(codecMessageId);
    const result = {
      steps,
      ...viewJson(view),
      anchors: anchorsOf(view),
      branches,
      runs: view.runs().map(runInfoJson),
      nodes: [...seenIds].map((id) => ({ codecMessageId: id, node: nodeJson(session.tree.getNodeByCodecMessageId(id)) })),
      timedOut,
    };
    await session.close();
    return result;
  },
  { watchdogMs: intEnv('TIMEOUT_MS', 20000) * 3 + 15000 },
);
