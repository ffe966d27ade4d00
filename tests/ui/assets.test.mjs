// /ui/ over plain HTTP: every file under ui/ is served from the binary itself (a copy of the
// binary, run from an empty directory, far from the source tree), byte for byte, with its
// content type, an ETag that answers 304, a strict Content-Security-Policy, no token needed
// for the files while the API still needs one, index.html for the app's deep links and 404 for
// a missing file.
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, mkdirSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, it } from 'node:test';

import { BIN, http, startServer } from './harness.mjs';

const UI_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'ui');
const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
};

let dir;
let server;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'timetrail-ui-assets-'));
  const bin = join(dir, 'bin', 'timetrail');
  mkdirSync(dirname(bin));
  copyFileSync(BIN, bin);
  chmodSync(bin, 0o755);
  const cwd = join(dir, 'empty');
  mkdirSync(cwd);
  server = await startServer(join(dir, 'data'), ['--auth', 'on'], { cwd, bin });
});

after(async () => {
  await server?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

it('serves every file of ui/ from the binary, with its content type and security headers', async () => {
  const files = readdirSync(UI_DIR, { recursive: true, withFileTypes: true }).filter((f) => f.isFile())
    .map((f) => join(f.parentPath ?? f.path, f.name).slice(UI_DIR.length + 1));
  assert.ok(files.includes('index.html') && files.includes('app.js') && files.includes('app.css'));
  for (const rel of files) {
    const res = await fetch(`${server.url}/ui/${rel}`);
    assert.equal(res.status, 200, rel);
    assert.equal(res.headers.get('content-type'), TYPES[rel.slice(rel.lastIndexOf('.'))], rel);
    assert.deepEqual(Buffer.from(await res.arrayBuffer()), readFileSync(join(UI_DIR, rel)), `${rel}: the embedded bytes`);
    assert.equal(res.headers.get('content-security-policy'),
      "default-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'none'", rel);
    assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
    assert.equal(res.headers.get('cache-control'), 'no-cache');
    assert.match(res.headers.get('etag'), /^"[0-9a-f]{20}"$/);
  }
});

it('answers 304 to a matching If-None-Match', async () => {
  const first = await fetch(`${server.url}/ui/app.js`);
  const etag = first.headers.get('etag');
  const again = await fetch(`${server.url}/ui/app.js`, { headers: { 'If-None-Match': etag } });
  assert.equal(again.status, 304);
  assert.equal((await again.text()).length, 0);
  const other = await fetch(`${server.url}/ui/app.js`, { headers: { 'If-None-Match': '"0000"' } });
  assert.equal(other.status, 200);
});

it('serves /ui/ without a token while the API needs one', async () => {
  const page = await fetch(`${server.url}/ui/`);
  assert.equal(page.status, 200);
  assert.match(await page.text(), /<script type="module" src="\/ui\/app.js">/);
  assert.equal((await http(server.url, 'GET', '/v1/log')).status, 401);
  const moved = await fetch(`${server.url}/ui`, { redirect: 'manual' });
  assert.equal(moved.status, 301);
  assert.equal(moved.headers.get('location'), '/ui/');
});

it('gives deep links index.html and a missing file 404', async () => {
  const index = readFileSync(join(UI_DIR, 'index.html'), 'utf8');
  for (const path of ['/ui/activity', '/ui/stream/public.orders%2F42/diff', '/ui/stream/public.orders%2F42']) {
    const res = await fetch(server.url + path);
    assert.equal(res.status, 200, path);
    assert.equal(res.headers.get('content-type'), 'text/html; charset=utf-8');
    assert.equal(await res.text(), index, path);
  }
  const missing = await fetch(`${server.url}/ui/missing.js`);
  assert.equal(missing.status, 404);
  assert.equal((await missing.json()).error, 'not_found');
  const post = await http(server.url, 'POST', '/ui/', {});
  assert.equal(post.status, 405);
  assert.equal(post.headers.get('allow'), 'GET');
});
