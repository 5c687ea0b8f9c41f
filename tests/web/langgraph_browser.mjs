// Drives examples/langgraph-web (React useStream on an Ably channel) in headless Chromium (playwright-core, no
// downloaded browsers): ask, watch the answer stream in, screenshot, reload and find the conversation hydrated from
// the channel, then ask again and press Stop while the answer streams, reload to see the run really ended, and ask
// a third time.
//
// Env:
//   APP_URL          the running app, e.g. http://127.0.0.1:8000/                     required
//   SCREENSHOT       where to write the PNG                                            required
//   CHROMIUM_PATH    the browser                                                       default /usr/bin/chromium
//   QUESTION         what to ask                                                       default below
//   EXPECT           how the first answer ends                                         default below (app.py's)
//   STOPPED_END      how the second answer would end, had Stop not stopped it          default below (app.py's)
//   NEXT_END         how the third answer ends                                         default below (app.py's)
//   TIMEOUT_MS       per wait                                                          default 20000
//
// stdout: progress lines, then `screenshot <path>`; exit 0 when every check passed, 1 otherwise.
// playwright-core comes from examples/langgraph-web/node_modules (see examples/langgraph-web/package.json).
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

const require = createRequire(new URL('../../examples/langgraph-web/package.json', import.meta.url));
const { chromium } = require('playwright-core');

const appUrl = process.env.APP_URL;
const screenshot = process.env.SCREENSHOT;
if (!appUrl || !screenshot) throw new Error('set APP_URL and SCREENSHOT');
const question = process.env.QUESTION ?? 'How does this page reach the agent?';
const expected = process.env.EXPECT ?? "the conversation comes back from the channel's history.";
const stoppedEnd = process.env.STOPPED_END ?? 'nothing of the cancelled answer is kept.';
const nextEnd = process.env.NEXT_END ?? 'stop my runs.';
const timeout = Number(process.env.TIMEOUT_MS ?? 20000);
const POLL_MS = 25;  // the scripted model streams a word every 40 ms
const WORDS_BEFORE_STOP = 8;  // the second answer is well on its way, and far from its end, when Stop is pressed
const SETTLE_MS = 1000;  // how long a stopped answer must stay as it is

/** What the page shows: whether a run streams, and each message's type and text. */
const view = (page) => page.evaluate(() => ({
  loading: document.querySelector('main')?.dataset.loading === 'true',
  messages: [...document.querySelectorAll('#messages .message')].map((node) => ({
    type: node.classList.contains('human') ? 'human' : 'ai',
    text: node.querySelector('p.text')?.textContent ?? '',
  })),
}));

const answers = (shown) => shown.messages.filter((m) => m.type === 'ai').map((m) => m.text);

/** Poll until the page stops loading; the distinct texts answer `index` showed while it loaded, in order. */
async function watchStream(page, index) {
  const texts = [];
  const deadline = Date.now() + timeout;
  for (let shown = await view(page); shown.loading; shown = await view(page)) {
    const text = answers(shown)[index] ?? '';
    if (text && text !== texts.at(-1)) texts.push(text);
    if (Date.now() > deadline) throw new Error(`still loading after ${timeout} ms`);
    await sleep(POLL_MS);
  }
  return texts;
}

/** Whether each text extends the one before it. */
const grows = (texts) => texts.every((text, i) => i === 0 || (text.startsWith(texts[i - 1]) && text.length > texts[i - 1].length));

async function ready(page) {
  await page.waitForSelector('main[data-ready="true"]');
}

const userDataDir = mkdtempSync(join(tmpdir(), 'chromium-profile-'));
const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
  headless: true,
  viewport: { width: 900, height: 700 },
  args: [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
  ],
});

let failed = false;
const fail = (why) => {
  console.error(why);
  failed = true;
};
try {
  const page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(timeout);
  page.on('console', (msg) => {
    if (msg.type() === 'error' || msg.type() === 'warning') console.error(`[page ${msg.type()}] ${msg.text()}`);
  });
  page.on('pageerror', (error) => console.error(`[page error] ${error.message}`));

  await page.goto(appUrl);
  await ready(page);
  const threadUrl = page.url();
  console.log(`page ready: ${threadUrl}`);
  if (!new URL(threadUrl).searchParams.get('thread')) fail('the page did not put its thread in the URL');

  // Streaming: the answer grows on screen while the run is loading.
  await page.fill('#input', question);
  await page.click('#send');
  await page.waitForSelector('main[data-loading="true"]');
  const streamed = await watchStream(page, 0);
  console.log(`first streamed texts (${streamed.length} while loading): ${JSON.stringify(streamed.slice(0, 3))}…`);
  if (streamed.length < 2 || !grows(streamed)) fail('the answer did not grow over two observations while loading');
  // The run may end a moment before its last events land (the terminal comes on its own stream): wait for them.
  await page.waitForFunction(
    (text) => [...document.querySelectorAll('#messages .message.ai p.text')].some((n) => n.textContent.endsWith(text)),
    expected,
  );
  const first = await view(page);
  const answer = answers(first)[0];
  console.log(`answer: ${JSON.stringify(answer)}`);
  if (streamed[0].length >= answer.length) fail('the first text seen was already the whole answer');
  await page.screenshot({ path: screenshot, fullPage: true });
  console.log(`screenshot ${screenshot}`);

  // A reload is a new Ably connection with nothing cached: the conversation must come from the channel.
  await page.reload();
  await ready(page);
  if (page.url() !== threadUrl) fail(`the reload changed the thread: ${page.url()}`);
  const restored = (await view(page)).messages;
  console.log(`after reload: ${JSON.stringify(restored)}`);
  if (JSON.stringify(restored) !== JSON.stringify([{ type: 'human', text: question }, { type: 'ai', text: answer }])) {
    fail('the conversation did not hydrate from the channel as it was');
  }

  // Stop: a second question, stopped once its answer has started streaming.
  await page.fill('#input', 'And what does Stop do?');
  await page.click('#send');
  await page.waitForFunction(
    (words) => document.querySelectorAll('#messages .message.ai p.text')[1]?.textContent.split(' ').length >= words,
    WORDS_BEFORE_STOP,
  );
  const before = answers(await view(page))[1];
  await page.click('#stop');
  await page.waitForSelector('main[data-loading="false"]');
  const atStop = answers(await view(page))[1] ?? '';
  await sleep(SETTLE_MS);
  const settled = await view(page);
  const later = answers(settled)[1] ?? '';
  console.log(`stopped after ${JSON.stringify(before)}; shown at stop ${JSON.stringify(atStop)}, ${SETTLE_MS} ms later ${JSON.stringify(later)}`);
  if (settled.loading || later !== atStop) fail('the stopped answer went on changing');
  if (later.endsWith(stoppedEnd)) fail('the stopped answer streamed to its end');
  const status = await page.textContent('#status');
  if (!status.startsWith('stopped')) fail(`the page does not say the run stopped: ${JSON.stringify(status)}`);

  // The run ended on the agent too: a fresh page finds the thread idle, the second answer not completed.
  await page.reload();
  await ready(page);
  await sleep(SETTLE_MS);
  const afterStop = await view(page);
  console.log(`after stop and reload: ${JSON.stringify(afterStop)}`);
  if (afterStop.loading) fail('after the stop the thread still runs');
  if (answers(afterStop).some((text) => text.endsWith(stoppedEnd))) fail('the stopped run completed on the agent');
  if (JSON.stringify(afterStop.messages.slice(0, 2)) !== JSON.stringify(restored)) fail('the stop lost the first exchange');

  // ... and the thread carries on: the agent takes the next question (it would refuse one while a run is active).
  await page.fill('#input', 'Can I open it in a second tab?');
  await page.click('#send');
  await page.waitForFunction(
    (text) => document.querySelector('main').dataset.loading === 'false'
      && document.querySelector('#messages .message:last-child.ai p.text')?.textContent.endsWith(text),
    nextEnd,
  );
  console.log(`next answer: ${JSON.stringify(answers(await view(page)).at(-1))}`);
} catch (error) {
  fail(error?.stack ?? String(error));
} finally {
  await context.close();
  rmSync(userDataDir, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
