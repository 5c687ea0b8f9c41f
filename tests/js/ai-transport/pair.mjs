// JS-to-JS pairing orchestrator: runs a client script and answers every invocation line it prints
// with agent-answer.mjs (a JS agent), optionally starting client-join.mjs part-way through. It is
// what a Python orchestrator does with a Python agent in place of agent-answer.mjs.
//
// Env: the common ones (ABLY_ENDPOINT, ABLY_API_KEY, SESSION, ...) are passed to every child, plus
//   CLIENT_SCRIPT     client-send.mjs (default) | client-edit-regenerate.mjs
//   AGENT_REPLY       reply text; "{n}" is replaced by the invocation's 1-based number and "{step}"
//                     by its step name                          default "Reply {n} from the JS agent."
//   AGENT_DELAY_MS / AGENT_DELTA_CHARS / AGENT_OUTCOME          DELAY_MS / DELTA_CHARS / OUTCOME of the agent
//   JOIN_AFTER_MS     start client-join.mjs this long after the first agent started (default: no joiner);
//                     its WAIT_FOR_TEXT is the first reply
//   Client-script env (TEXT, CANCEL_AFTER_CHARS, EDIT_TEXT, ...) passes straight through; child
//   settings that would collide (CLIENT_ID, INVOCATION) are set per child.
//
// stdout: one line {"client":{"exit","lines":[...]},"agents":[{"exit","result"}],"joiner"?:{"exit","result"}}
// exit 0 when every child exited 0.
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const env = (name, fallback) => (process.env[name] === undefined || process.env[name] === '' ? fallback : process.env[name]);

function child(script, extraEnv, onLine) {
  const proc = spawn(process.execPath, [join(here, script)], {
    env: { ...process.env, ...extraEnv },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines = [];
  createInterface({ input: proc.stdout }).on('line', (line) => {
    let parsed;
    try {
      parsed = JSON.parse(line);
    } catch {
      parsed = { unparsed: line };
    }
    lines.push(parsed);
    onLine?.(parsed);
  });
  const tag = `[${script}${extraEnv.CLIENT_ID ? ` ${extraEnv.CLIENT_ID}` : ''}] `;
  createInterface({ input: proc.stderr }).on('line', (line) => process.stderr.write(`${tag}${line}\n`));
  const exited = new Promise((resolve) => proc.on('close', (code) => resolve(code)));
  return { lines, exited: exited.then((exit) => ({ exit, lines })) };
}

const agents = [];
let joiner;
const replyFor = (n, step) => env('AGENT_REPLY', 'Reply {n} from the JS agent.').replaceAll('{n}', String(n)).replaceAll('{step}', step ?? 'send');

const client = child(env('CLIENT_SCRIPT', 'client-send.mjs'), { CLIENT_ID: 'js-client' }, (line) => {
  if (!line.invocation) return;
  const n = agents.length + 1;
  const reply = replyFor(n, line.step);
  agents.push(
    child('agent-answer.mjs', {
      CLIENT_ID: `js-agent-${n}`,
      INVOCATION: JSON.stringify(line.invocation),
      REPLY: reply,
      DELAY_MS: env('AGENT_DELAY_MS', '20'),
      DELTA_CHARS: env('AGENT_DELTA_CHARS', '0'),
      OUTCOME: env('AGENT_OUTCOME', 'complete'),
    }).exited,
  );
  if (n === 1 && env('JOIN_AFTER_MS') !== undefined) {
    joiner = new Promise((resolve) => setTimeout(resolve, Number(env('JOIN_AFTER_MS')))).then(
      () => child('client-join.mjs', { CLIENT_ID: 'js-joiner', WAIT_FOR_TEXT: reply }).exited,
    );
  }
});

const clientResult = await client.exited;
const agentResults = await Promise.all(agents);
const joinerResult = joiner ? await joiner : undefined;
const summary = {
  client: clientResult,
  agents: agentResults.map(({ exit, lines }) => ({ exit, result: lines.at(-1) })),
  ...(joinerResult ? { joiner: { exit: joinerResult.exit, result: joinerResult.lines.at(-1) } } : {}),
};
process.stdout.write(`${JSON.stringify(summary)}\n`);
const ok = clientResult.exit === 0 && agentResults.every((a) => a.exit === 0) && (!joinerResult || joinerResult.exit === 0);
process.exitCode = ok ? 0 : 1;
