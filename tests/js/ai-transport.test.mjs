// @ably/ai-transport 0.8.0 (the genuine JS SDK, Vercel UIMessage codec) against the dev server,
// JS client to JS agent, through the harness scripts in ./ai-transport (see its README.md):
// mutable messages (stream create + appends), run lifecycle, cancel, edit/regenerate branches,
// a late joiner that loads history mid-stream, and history replay.
import { spawn } from 'node:child_process';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { uniqueChannel } from './helpers.mjs';

const here = join(dirname(fileURLToPath(import.meta.url)), 'ai-transport');

/** Run a harness script; resolve {exit, lines (parsed JSON), stderr}. */
function run(script, env, ms = 60000) {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [join(here, script)], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    proc.stdout.on('data', (d) => (stdout += d));
    proc.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      proc.kill();
      reject(new Error(`${script} ran over ${ms} ms\n${stderr}`));
    }, ms);
    proc.on('close', (exit) => {
      clearTimeout(timer);
      const lines = stdout.split('\n').filter(Boolean).map((line) => JSON.parse(line));
      resolve({ exit, lines, stderr });
    });
  });
}

const texts = (messages) => messages.map((m) => [m.role, m.parts.filter((p) => p.type === 'text').map((p) => p.text).join('')]);

async function pair(env) {
  const result = await run('pair.mjs', env);
  assert.equal(result.exit, 0, `pair.mjs failed:\n${JSON.stringify(result.lines)}\n${result.stderr}`);
  return result.lines.at(-1);
}

test('send, streamed reply, history replay', { timeout: 60000 }, async () => {
  const SESSION = uniqueChannel('conversations:ait-send');
  const reply = 'Two plus two is four, streamed word by word.';
  const { client, agents } = await pair({ SESSION, TEXT: 'What is 2+2?', AGENT_REPLY: reply, AGENT_DELAY_MS: '10' });
  const [invocationLine, result] = client.lines;
  assert.deepEqual(Object.keys(invocationLine.invocation).sort(), ['inputEventId', 'sessionName']);
  assert.equal(invocationLine.invocation.sessionName, SESSION);
  assert.deepEqual(texts(result.messages), [['user', 'What is 2+2?'], ['assistant', reply]]);
  assert.equal(result.run.status, 'complete');
  assert.equal(result.runs.length, 1);
  assert.equal(result.runs[0].runId, agents[0].result.runId);
  assert.deepEqual(result.lifecycle.map((e) => [e.type, e.reason]), [['start', undefined], ['end', 'complete']]);
  assert.deepEqual(texts(agents[0].result.conversation), [['user', 'What is 2+2?']]);

  // A second turn from a fresh client process continues the conversation (history + auto-parent).
  const second = await pair({ SESSION, TEXT: 'And 3+3?', AGENT_REPLY: 'Six.' });
  const turn2 = second.client.lines.at(-1);
  assert.deepEqual(texts(turn2.messages), [['user', 'What is 2+2?'], ['assistant', reply], ['user', 'And 3+3?'], ['assistant', 'Six.']]);
  assert.equal(second.agents[0].result.conversation.length, 3, 'the agent sees the earlier turn as context');

  // A late joiner rebuilds everything from history alone.
  const joined = await run('client-join.mjs', { SESSION, WAIT_FOR_TEXT: 'Six.', TIMEOUT_MS: '10000' });
  assert.equal(joined.exit, 0, joined.stderr);
  assert.deepEqual(texts(joined.lines.at(-1).messages), texts(turn2.messages));
});

test('cancel mid-stream', { timeout: 60000 }, async () => {
  const SESSION = uniqueChannel('conversations:ait-cancel');
  const reply = 'one two three four five six seven eight nine ten eleven twelve thirteen fourteen';
  const { client, agents } = await pair({ SESSION, TEXT: 'Count', CANCEL_AFTER_CHARS: '8', AGENT_REPLY: reply, AGENT_DELAY_MS: '100' });
  const result = client.lines.at(-1);
  assert.equal(result.cancelled, true);
  assert.equal(result.run.status, 'cancelled');
  assert.equal(agents[0].result.pipe.reason, 'cancelled');
  assert.ok(result.run.text.length >= 8 && result.run.text.length < reply.length, result.run.text);
  assert.ok(reply.startsWith(result.run.text));
});

test('edit and regenerate make sibling branches', { timeout: 90000 }, async () => {
  const SESSION = uniqueChannel('conversations:ait-branch');
  const { client, agents } = await pair({ SESSION, CLIENT_SCRIPT: 'client-edit-regenerate.mjs', AGENT_REPLY: 'Answer {n} to {step}.' });
  assert.deepEqual(client.lines.slice(0, 3).map((l) => l.step), ['send', 'edit', 'regenerate']);
  assert.equal(agents.length, 3);
  const result = client.lines.at(-1);
  assert.deepEqual(result.steps.map((s) => s.status), ['complete', 'complete', 'complete']);
  assert.deepEqual(texts(result.messages), [['user', 'Edited question'], ['assistant', 'Answer 3 to regenerate.']]);
  assert.deepEqual(result.anchors.map((a) => [a.siblingCount, a.index]), [[2, 1], [2, 1]]);
  assert.deepEqual(
    result.branches.map((b) => b.messages.map((m) => m.text)),
    [
      ['First question', 'Answer 1 to send.'],
      ['Edited question', 'Answer 2 to edit.'],
      ['Edited question', 'Answer 3 to regenerate.'],
    ],
  );
});

test('a client joining mid-stream sees the whole reply once', { timeout: 60000 }, async () => {
  const SESSION = uniqueChannel('conversations:ait-join');
  const reply = 'Once upon a time a small robot streamed its story one token at a time, and then it stopped.';
  const { client, joiner } = await pair({ SESSION, TEXT: 'Story', AGENT_REPLY: reply, AGENT_DELAY_MS: '80', JOIN_AFTER_MS: '400' });
  assert.equal(client.lines.at(-1).run.text, reply);
  assert.equal(joiner.exit, 0);
  assert.equal(joiner.result.found, true);
  assert.deepEqual(texts(joiner.result.messages), [['user', 'Story'], ['assistant', reply]]);
});
