// Captured rows in the web UI: a real PostgreSQL (tests/support/with_postgres.sh runs this file
// beside a private cluster), `timetrail serve --capture` recording it, writes made with psql
// that carry their who and why in a /*timetrail {...}*/ comment, and headless Chromium finding
// the table and the row, reading who changed it, previewing the SQL of a revert in the source
// (capture revert, dry_run) and running it.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, it } from 'node:test';
import { BIN, CHROMIUM, chromium, enc, http, openPage, shot, startServer, until } from './harness.mjs';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const PG_URL = process.env.TIMETRAIL_PG_URL;
if (!PG_URL) throw new Error('run under tests/support/with_postgres.sh (TIMETRAIL_PG_URL)');

const psql = (sql) => execFileSync('psql', ['-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-d', PG_URL, '-c', sql], { encoding: 'utf8' }).trim();

let fx;

before(async () => {
  execFileSync('psql', ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', PG_URL, '-f', join(ROOT, 'sql', 'timetrail_context.sql')]);
  psql('CREATE TABLE public.orders (id integer PRIMARY KEY, status text NOT NULL, total numeric NOT NULL)');
  psql("SELECT timetrail.track_context('public.orders')");
  const dir = mkdtempSync(join(tmpdir(), 'timetrail-ui-capture-'));
  const data = join(dir, 'data');
  const admin = execFileSync(BIN, ['token', 'create', '--data', data, '--scope', 'admin', '--name', 'ops'], { encoding: 'utf8' }).trim();
  const server = await startServer(data, ['--auth', 'on', '--capture', PG_URL]);
  const browser = await chromium.launch({
    executablePath: CHROMIUM, headless: true, args: process.getuid() === 0 ? ['--no-sandbox'] : [],
  });
  fx = {
    url: server.url, browser, tokens: { admin },
    http: (method, path, body, token = admin) => http(server.url, method, path, body, token),
    async close() {
      await browser.close().catch(() => {});
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  // The capture's slot exists once it reports its status; writes after that are recorded.
  await until(async () => (await fx.http('GET', '/v1/capture')).status === 200, 'the capture to start');
  psql(`INSERT INTO public.orders VALUES (42, 'new', 10.5) /*timetrail {"actor":"alice","reason":"checkout"}*/`);
  psql(`INSERT INTO public.orders VALUES (43, 'new', 7) /*timetrail {"actor":"alice","reason":"checkout"}*/`);
  psql(`UPDATE public.orders SET status = 'refunded' WHERE id = 42 /*timetrail {"actor":"mallory","reason":"refund by mistake"}*/`);
  await until(async () => (await fx.http('GET', `/v1/streams/${enc('public.orders/42')}`)).json?.events?.length === 2,
    'the capture to record both changes of order 42');
});

after(async () => { await fx?.close(); });

it('finds a captured table and row, shows who changed it, and reverts it in the source', async () => {
  const page = await openPage(fx, '#/find?q=public');
  await page.click('a.chip:has-text("public.orders")');
  await page.waitForFunction(() => location.hash === '#/find?q=public.orders%2F');
  await page.waitForSelector('ul.streams');
  assert.deepEqual((await page.locator('ul.streams a.stream').allTextContents()).sort(), ['public.orders/42', 'public.orders/43']);
  // A row by its key.
  await page.fill('#row-key', '43');
  await page.press('#row-key', 'Enter');
  await page.waitForFunction(() => location.hash === '#/stream/public.orders%2F43');
  await page.waitForSelector('li.tl-event');
  assert.match(await page.textContent('li.tl-event'), /alice/);
  await page.goBack();
  await page.click('ul.streams a.stream:text-is("public.orders/42")');
  await page.waitForSelector('li.tl-event[data-revision="1"]');
  const rev1 = page.locator('li.tl-event[data-revision="1"]');
  assert.equal(await rev1.locator('.actor').textContent(), 'mallory');
  assert.match(await rev1.locator('.reason').textContent(), /refund by mistake/);
  assert.equal(await rev1.locator('ul.patch .new').textContent(), '"refunded"');
  assert.match(await rev1.locator('.source').textContent(), /^update in public\.orders · xid \d+$/);

  await page.click('li.tl-event[data-revision="0"] a:text-is("revert to here")');
  await page.waitForFunction(() => /INSERT INTO "public"\."orders"/.test(document.querySelector('#sql')?.textContent || ''));
  const sql = await page.textContent('#sql');
  assert.match(sql, /^BEGIN;/);
  assert.match(sql, /'new'::text/);
  assert.equal(psql('SELECT status FROM public.orders WHERE id = 42'), 'refunded', 'the preview changed nothing');
  await page.fill('#reason', 'undo the mistaken refund');
  await shot(page, 'revert-captured');
  await page.click('#do-source-revert');
  await page.waitForSelector('.revert .flash');
  assert.match(await page.textContent('.revert .flash'), /Reverted 1 row/);
  assert.equal(psql('SELECT status FROM public.orders WHERE id = 42'), 'new');

  // The capture records the revert like any other change, with its reason.
  await until(async () => (await fx.http('GET', `/v1/streams/${enc('public.orders/42')}`)).json?.events?.length === 3,
    'the capture to record the revert');
  await page.goto(`${fx.url}/ui/#/stream/${enc('public.orders/42')}`);
  await page.waitForSelector('li.tl-event[data-revision="2"]');
  const rev2 = page.locator('li.tl-event[data-revision="2"]');
  assert.match(await rev2.locator('.reason').textContent(), /undo the mistaken refund/);
  assert.equal(await rev2.locator('ul.patch .new').textContent(), '"new"');
  assert.deepEqual(page.problems, []);
  await page.context().close();
});
