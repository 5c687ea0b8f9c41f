// Drives examples/web in headless Chromium (playwright-core, no downloaded browsers): ask, watch the answer
// stream in, screenshot, reload, check the conversation comes back from the channel's history, then ask again
// and press Cancel while the answer streams.
//
// Env:
//   APP_URL          the running app, e.g. http://127.0.0.1:8000/                     required
//   SCREENSHOT       where to write the PNG                                            required
//   CHROMIUM_PATH    the browser                                                       default /usr/bin/chromium
//   QUESTION         what to ask                                                       default below
//   EXPECT           text the streamed answer must contain                             default "An Ably channel"
//   TIMEOUT_MS       per wait                                                          default 20000
//
// stdout: progress lines, then `screenshot <path>`; exit 0 when every check passed, 1 otherwise.
// playwright-core comes from examples/web/node_modules (see examples/web/package.json).
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const require = createRequire(new URL('../../examples/web/package.json', import.meta.url));
const { chromium } = require('playwright-core');

const appUrl = process.env.APP_URL;
const screenshot = process.env.SCREENSHOT;
if (!appUrl || !screenshot) throw new Error('set APP_URL and SCREENSHOT');
const question = process.env.QUESTION ?? 'Why is an Ably channel the session of this agent?';
const expected = process.env.EXPECT ?? 'An Ably channel';
const timeout = Number(process.env.TIMEOUT_MS ?? 20000);

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

const assistantText = (page) =>
  page.$$eval('#messages .message.assistant p.text', (nodes) => nodes.map((n) => n.textContent).join('\n'));

let failed = false;
try {
  const page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(timeout);
  page.on('console', (msg) => {
    if (msg.type() === 'error' || msg.type() === 'warning') console.error(`[page ${msg.type()}] ${msg.text()}`);
  });
  page.on('pageerror', (error) => console.error(`[page error] ${error.message}`));

  await page.goto(appUrl);
  await page.waitForSelector('body[data-ready="true"]');
  const sessionUrl = page.url();
  console.log(`page ready: ${sessionUrl}`);

  await page.fill('#input', question);
  await page.click('#send');
  await page.waitForSelector('#messages .message.user');

  // Streaming: the answer shows up partially before the run has ended (the model streams word by word).
  await page.waitForFunction(() => document.querySelector('#messages .message.assistant p.text')?.textContent);
  const partial = await assistantText(page);
  const streamingSeen = await page.evaluate(() => document.body.dataset.running === 'true');
  console.log(`first streamed text (${partial.length} chars, run active: ${streamingSeen}): ${JSON.stringify(partial)}`);

  await page.waitForFunction(
    (text) => document.body.dataset.running === 'false'
      && [...document.querySelectorAll('#messages .message.assistant p.text')].some((n) => n.textContent.includes(text)),
    expected,
  );
  const answer = await assistantText(page);
  console.log(`answer: ${JSON.stringify(answer)}`);
  if (partial.length >= answer.length) {
    console.error('the answer did not grow after its first text: it was not streamed');
    failed = true;
  }
  await page.screenshot({ path: screenshot, fullPage: true });
  console.log(`screenshot ${screenshot}`);

  // A reload is a new Ably connection with nothing cached: the conversation must come from history.
  await page.reload();
  await page.waitForSelector('body[data-ready="true"]');
  if (page.url() !== sessionUrl) {
    console.error(`the reload changed the session: ${page.url()}`);
    failed = true;
  }
  const restored = await page.$$eval('#messages .message', (nodes) =>
    nodes.map((n) => ({ role: n.classList.contains('user') ? 'user' : 'assistant', text: [...n.querySelectorAll('p.text')].map((p) => p.textContent).join('') })),
  );
  console.log(`after reload: ${JSON.stringify(restored)}`);
  const ok = restored.length === 2 && restored[0].role === 'user' && restored[0].text === question
    && restored[1].role === 'assistant' && restored[1].text === answer;
  if (!ok) {
    console.error('the conversation did not re-render from history as it was');
    failed = true;
  }

  // Cancel: a second question, cancelled once its answer has started streaming.
  await page.fill('#input', 'And what does Cancel do?');
  await page.click('#send');
  await page.waitForFunction(() => document.querySelectorAll('#messages .message.assistant p.text').length === 2);
  await page.click('#cancel');
  await page.waitForSelector('#messages .message.assistant .run-status.cancelled');
  const cut = await page.$$eval('#messages .message.assistant p.text', (nodes) => nodes[1].textContent);
  console.log(`cancelled after: ${JSON.stringify(cut)}`);
  if (cut.endsWith('carry on.')) {
    console.error('the cancelled answer streamed to its end');
    failed = true;
  }
} catch (error) {
  console.error(error?.stack ?? String(error));
  failed = true;
} finally {
  await context.close();
  rmSync(userDataDir, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
