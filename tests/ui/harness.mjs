// What the web UI's tests share: a real `timetrail serve --auth on` on a temporary data
// directory with tokens made by `timetrail token create`, HTTP helpers that append through the
// API, and headless Chromium (Debian's /usr/bin/chromium) driven by playwright-core.
//
// TIMETRAIL_BIN is the timetrail binary (CMake passes it). TIMETRAIL_UI_SCREENSHOTS=DIR saves a
// screenshot of each view into DIR (docs/ui/ holds the committed ones).
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

// playwright-core comes from tests/ui/package-lock.json (scripts/install-npm-deps.sh).
const { chromium } = await import('playwright-core').catch((e) => {
  throw new Error(`playwright-core is not installed in tests/ui: run scripts/install-npm-deps.sh (${e.message})`);
});
export { chromium };

export const BIN = process.env.TIMETRAIL_BIN;
if (!BIN) throw new Error('set TIMETRAIL_BIN to the timetrail binary');
export const CHROMIUM = process.env.TIMETRAIL_CHROMIUM || '/usr/bin/chromium';
const SHOTS = process.env.TIMETRAIL_UI_SCREENSHOTS || '';

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Polls "fn" until it returns a truthy value: the server and the page work asynchronously, so
// tests wait for a condition (with a generous deadline), never for a fixed time.
export async function until(fn, what, timeoutMs = 20000) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) { last = e; }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${last}`);
    await sleep(100);
  }
}

// A token made on the (stopped) data directory by the CLI, as an operator would.
function createToken(dataDir, args) {
  return execFileSync(BIN, ['token', 'create', '--data', dataDir, ...args], { encoding: 'utf8' }).trim();
}

// Starts `timetrail serve` (opts.bin, default TIMETRAIL_BIN; in opts.cwd; on opts.listen, default
// a free port) with extra flags and returns {url, stop}.
export async function startServer(dataDir, extra = [], opts = {}) {
  const proc = spawn(opts.bin || BIN, ['serve', '--data', dataDir, '--listen', opts.listen || '127.0.0.1:0', ...extra],
    { stdio: ['ignore', 'pipe', 'inherit'], cwd: opts.cwd, env: { ...process.env, ...(opts.env || {}) } });
  const line = await new Promise((resolve, reject) => {
    let out = '';
    proc.stdout.setEncoding('utf8');
    const onData = (chunk) => {
      out += chunk;
      const nl = out.indexOf('\n');
      if (nl >= 0) {
        proc.stdout.off('data', onData);
        proc.stdout.resume();  // keep draining so the server never blocks on a full pipe
        resolve(out.slice(0, nl).trim());
      }
    };
    proc.stdout.on('data', onData);
    proc.on('exit', (code) => reject(new Error(`timetrail serve exited ${code}: ${out}`)));
  });
  if (!line.startsWith('listening on ')) throw new Error(`unexpected first line: ${line}`);
  const url = line.slice('listening on '.length);
  return {
    url,
    proc,
    async stop() {
      if (proc.exitCode !== null) return;
      const exited = new Promise((r) => proc.on('exit', r));
      proc.kill('SIGTERM');
      await exited;
    },
  };
}

// The whole fixture: a server with authentication on and three kinds of tokens.
export async function setup() {
  const dir = mkdtempSync(join(tmpdir(), 'timetrail-ui-'));
  const data = join(dir, 'data');
  const admin = createToken(data, ['--scope', 'admin', '--name', 'ops']);
  const reader = createToken(data, ['--scope', 'read', '--prefix', 'acme/', '--name', 'acme-reader']);
  // Expires a few seconds from now (the API refuses expiry times in the past); the test that
  // needs it waits until the server refuses it.
  const expiresAt = new Date(Date.now() + 4000).toISOString();
  const expiring = createToken(data, ['--scope', 'read', '--expires', expiresAt, '--name', 'short-lived']);
  const server = await startServer(data, ['--auth', 'on']);
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    // Chromium's sandbox cannot start as root (the test command runs as root).
    args: process.getuid && process.getuid() === 0 ? ['--no-sandbox'] : [],
  });
  const fx = {
    dir, data, server, url: server.url, browser, tokens: { admin, reader, expiring, expiresAt },
    async close() {
      await browser.close().catch(() => {});
      await fx.server.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  fx.http = (method, path, body, token = admin) => http(fx.url, method, path, body, token);
  // Stops the server and starts it again on the same port: open pages lose their connections.
  fx.restart = async () => {
    await fx.server.stop();
    const listen = new URL(fx.url).host;
    fx.server = await until(() => startServer(data, ['--auth', 'on'], { listen }), 'the server to start again on ' + listen);
  };
  return fx;
}

export async function http(base, method, path, body, token) {
  const headers = {};
  if (token) headers.Authorization = 'Bearer ' + token;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const res = await fetch(base + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { status: res.status, json, text, headers: res.headers };
}

export const enc = encodeURIComponent;

// Appends events to a stream through the API; returns the answer (201 expected).
export async function append(fx, stream, events, token) {
  const r = await fx.http('POST', `/v1/streams/${enc(stream)}`, { events }, token);
  if (r.status !== 201) throw new Error(`append to ${stream}: ${r.status} ${r.text}`);
  return r.json;
}

// A new page signed in with "token" (or none), at /ui/ + hash.
export async function openPage(fx, hash = '#/', token = fx.tokens.admin, viewport = { width: 1280, height: 860 }) {
  const context = await fx.browser.newContext({ viewport });
  const page = await context.newPage();
  const problems = [];
  page.on('pageerror', (e) => problems.push('page error: ' + e.message));
  page.on('console', (m) => { if (m.type() === 'error' && !/status of 40[134]/.test(m.text())) problems.push('console: ' + m.text()); });
  // Sign in the way a user does: the sign-in box keeps the token in sessionStorage.
  await page.goto(fx.url + '/ui/');
  if (token) {
    await page.fill('#token', token);
    await page.click('.signin button[type=submit]');
    await page.waitForSelector('#signout');
  }
  await page.goto(fx.url + '/ui/' + hash);
  page.problems = problems;
  return page;
}

// Saves a screenshot of the page as DIR/name.png when TIMETRAIL_UI_SCREENSHOTS=DIR is set.
export async function shot(page, name) {
  if (!SHOTS) return;
  mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: join(SHOTS, name + '.png'), fullPage: false });
}
