// The UI's only way to the server: the public HTTP API v1 (docs/http-api.md) with the user's
// token. The token lives in sessionStorage: it is gone when the tab closes, and no other site
// can read it.

const TOKEN_KEY = 'timetrail.token';

export function getToken() { return sessionStorage.getItem(TOKEN_KEY) || ''; }
export function setToken(t) {
  if (t) sessionStorage.setItem(TOKEN_KEY, t.trim());
  else sessionStorage.removeItem(TOKEN_KEY);
}

// An error answer of the API, with its HTTP status, code and the server's message.
export class ApiError extends Error {
  constructor(status, body) {
    super(body?.message || `HTTP ${status}`);
    this.status = status;
    this.code = body?.error || 'http_' + status;
    this.body = body;
  }
  // What the user should read first: 401 and 403 name who they are and what they may do.
  get title() {
    if (this.status === 401) {
      if (/expired/i.test(this.message)) return 'Token expired';
      if (/revoked/i.test(this.message)) return 'Token revoked';
      return getToken() ? 'Not signed in: the token was refused' : 'Sign in needed';
    }
    if (this.status === 403) return 'Forbidden: your token does not allow this';
    if (this.status === 404) return 'Not found';
    if (this.status === 409) return 'Conflict';
    if (this.status === 0) return 'Server unreachable';
    return `Error ${this.status}`;
  }
}

function headers(extra) {
  const h = { Accept: 'application/json', ...extra };
  const t = getToken();
  if (t) h.Authorization = 'Bearer ' + t;
  return h;
}

// One segment of a path: a stream name's '/' travels as %2F (docs/http-api.md, "Conventions").
export const seg = (s) => encodeURIComponent(s);

export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) {
    if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  }
  const s = q.toString();
  return s ? '?' + s : '';
}

// Listeners told about every 401 (the header shows the sign-in state).
const authListeners = new Set();
export function onAuthError(fn) { authListeners.add(fn); }

async function request(method, path, body) {
  let res;
  try {
    res = await fetch(path, {
      method,
      headers: headers(body !== undefined ? { 'Content-Type': 'application/json' } : {}),
      body: body !== undefined ? JSON.stringify(body) : undefined,
      cache: 'no-store',
    });
  } catch (e) {
    throw new ApiError(0, { error: 'unreachable', message: String(e.message || e) });
  }
  const text = await res.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch { json = { message: text }; }
  if (!res.ok) {
    const err = new ApiError(res.status, json);
    if (res.status === 401) authListeners.forEach((fn) => fn(err));
    throw err;
  }
  return json;
}

export const get = (path, params) => request('GET', path + query(params));
export const post = (path, body) => request('POST', path, body ?? {});

// The API's calls the views use, by name.
export const api = {
  whoami: () => get('/v1/whoami'),
  stream: (s, p) => get(`/v1/streams/${seg(s)}`, p),
  info: (s) => get(`/v1/streams/${seg(s)}/info`),
  entity: (s, p) => get(`/v1/entities/${seg(s)}`, p),
  history: (s, p) => get(`/v1/entities/${seg(s)}/history`, p),
  diff: (s, p) => get(`/v1/entities/${seg(s)}/diff`, p),
  revert: (s, body) => post(`/v1/entities/${seg(s)}/revert`, body),
  event: (id) => get(`/v1/events/${seg(id)}`),
  log: (p) => get('/v1/log', p),
  activity: (p) => get('/v1/activity', p),
  integrity: () => get('/v1/integrity'),
  verify: () => post('/v1/integrity/verify', {}),
  capture: () => get('/v1/capture'),
  captureRevert: (body) => post('/v1/capture/revert', body),
};

// What the signed-in token may do (GET /v1/whoami), asked once per token; null when the server
// does not say (then the UI offers everything and the server's answer decides).
let granted = { token: null, who: null };
export async function permissions() {
  const token = getToken();
  if (granted.token === token && granted.who) return granted.who;
  try {
    granted = { token, who: await get('/v1/whoami') };
  } catch {
    granted = { token: null, who: null };
  }
  return granted.who;
}
// Whether "who" may use the admin scope on "stream" (any stream when omitted): reverts and
// verification. True when unknown.
export function mayAdmin(who, stream) {
  if (!who) return true;
  if (!who.scopes.includes('admin')) return false;
  return stream === undefined || who.prefixes.length === 0 || who.prefixes.some((p) => stream.startsWith(p));
}

// A subscription to the log over server-sent events (GET /v1/subscribe). EventSource cannot
// send an Authorization header, so this reads the stream with fetch. On a dropped connection it
// reconnects with Last-Event-ID set to the last position it delivered, so nothing is missed
// and nothing is seen twice (the server resumes after that position).
export class LogTail {
  constructor({ from, stream_prefix, types, onEvent, onStatus }) {
    this.params = { from, stream_prefix, types };
    this.onEvent = onEvent;
    this.onStatus = onStatus || (() => {});
    this.lastId = null;
    this.stopped = false;
    this.controller = null;
    this.retryMs = 500;
  }

  start() {
    this.stopped = false;
    this.#loop();
  }

  stop() {
    this.stopped = true;
    this.controller?.abort();
    this.onStatus('paused', this.lastId);
  }

  async #loop() {
    while (!this.stopped) {
      try {
        await this.#once();
        if (!this.stopped) this.onStatus('reconnecting', this.lastId);
      } catch (e) {
        if (this.stopped) return;
        if (e instanceof ApiError && (e.status === 401 || e.status === 403 || e.status === 400)) {
          this.onStatus('error', this.lastId, e);
          return;  // retrying cannot help: the user must change the token or the filter
        }
        this.onStatus('reconnecting', this.lastId, e);
      }
      await new Promise((r) => setTimeout(r, this.retryMs));
      this.retryMs = Math.min(this.retryMs * 2, 5000);
    }
  }

  async #once() {
    this.controller = new AbortController();
    const extra = { Accept: 'text/event-stream' };
    if (this.lastId !== null) extra['Last-Event-ID'] = String(this.lastId);
    const res = await fetch('/v1/subscribe' + query(this.params), {
      headers: headers(extra), signal: this.controller.signal, cache: 'no-store',
    });
    if (!res.ok) {
      let body = null;
      try { body = await res.json(); } catch { /* not JSON */ }
      throw new ApiError(res.status, body);
    }
    this.onStatus('live', this.lastId);
    this.retryMs = 500;
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buf = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buf += value;
      let end;
      while ((end = buf.indexOf('\n\n')) >= 0) {
        const block = buf.slice(0, end);
        buf = buf.slice(end + 2);
        this.#dispatch(block);
      }
    }
  }

  #dispatch(block) {
    let id = null;
    let data = '';
    for (const line of block.split('\n')) {
      if (line.startsWith(':')) continue;  // comments: "subscribed", keepalives
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
      if (field === 'id') id = value;
      else if (field === 'data') data += (data ? '\n' : '') + value;
    }
    if (!data) return;
    const event = JSON.parse(data);
    if (id !== null) this.lastId = Number(id);
    this.onEvent(event);
  }
}
