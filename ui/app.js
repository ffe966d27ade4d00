// The timetrail web UI: a hash router, the page shell (search, sign-in, keyboard) and the
// views (views.js). Every view has its own URL (#/stream/<name>?..., #/activity?...), so any
// screen can be bookmarked or sent to a colleague.
import { getToken, setToken, onAuthError, ApiError } from './api.js';
import { h } from './util.js';
import { views } from './views.js';

const $ = (sel) => document.querySelector(sel);

// "#/stream/public.orders%2F42/diff?from=1" -> {parts: ['stream', 'public.orders/42', 'diff'], q}
export function parseHash() {
  const raw = location.hash.replace(/^#\/?/, '');
  const qi = raw.indexOf('?');
  const path = qi < 0 ? raw : raw.slice(0, qi);
  const q = new URLSearchParams(qi < 0 ? '' : raw.slice(qi + 1));
  const parts = path.split('/').filter((p) => p !== '').map((p) => {
    try { return decodeURIComponent(p); } catch { return p; }
  });
  return { parts, q };
}

// The URL of a view: link('stream', name, 'diff', {from: 1}).
export function link(...args) {
  const params = args.length && typeof args[args.length - 1] === 'object' ? args.pop() : {};
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, v);
  const qs = q.toString();
  return '#/' + args.map((a) => encodeURIComponent(a)).join('/') + (qs ? '?' + qs : '');
}

// A new history entry fires hashchange, which renders; a replaced one renders here.
export function go(href, { replace = false } = {}) {
  if (replace) {
    history.replaceState(null, '', href);
    render();
  } else if (location.hash === href) {
    render();
  } else {
    location.hash = href;
  }
}

// A short notice above the view (e.g. after a revert), shown once.
let flash = null;
export function setFlash(text) { flash = text; }

// The 401/403 and other failures, as the user should read them: what happened first, then the
// server's own message.
export function errorBox(err) {
  const e = err instanceof ApiError ? err : new ApiError(500, { message: String(err?.message || err) });
  const box = h('div.error', { role: 'alert', dataset: { status: e.status, code: e.code } },
    h('strong.title', e.title), h('span.message', e.message),
    h('span.muted', ` (HTTP ${e.status} ${e.code})`));
  if (e.status === 401) {
    box.append(h('div', h('button', { type: 'button', onclick: () => showSignIn(true) }, getToken() ? 'Sign in with another token' : 'Sign in')));
  }
  return box;
}

// ---- sign-in -------------------------------------------------------------------------------

// The token's public id: tt_<id>_<secret>.
const tokenId = (t) => (/^tt_([0-9a-f]+)_/.exec(t)?.[1]) || 'token';

// The last refusal of the current token (401), shown beside it until the user signs in again.
let refused = null;

function renderAuth() {
  const box = $('#auth');
  box.replaceChildren();
  const t = getToken();
  if (t) {
    box.append(h('span.who', { title: 'The token is kept in this tab only (sessionStorage)' }, 'token ', h('code', tokenId(t))),
      refused ? h('span.refused#auth-state', { title: refused.message }, refused.title.startsWith('Token ') ? refused.title.slice(6) : 'refused') : '',
      h('button.link#signout', { type: 'button', onclick: () => { setToken(''); refused = null; renderAuth(); render(); } }, 'Sign out'));
  } else {
    box.append(h('button#signin-open', { type: 'button', onclick: () => showSignIn(true) }, 'Sign in'));
  }
}

function showSignIn(show) {
  const banner = $('#banner');
  if (!show) { banner.hidden = true; banner.replaceChildren(); return; }
  const input = h('input#token', { type: 'password', placeholder: 'tt_…', autocomplete: 'off', 'aria-label': 'API token' });
  banner.replaceChildren(h('form.signin', {
    onsubmit: (ev) => {
      ev.preventDefault();
      setToken(input.value);
      refused = null;
      showSignIn(false);
      renderAuth();
      render();
    },
  }, h('label', { for: 'token' }, 'API token'), input, h('button', { type: 'submit' }, 'Sign in'),
  h('span.muted', 'Kept in this tab only. Create one with ', h('code', 'timetrail token create'), '.')));
  banner.hidden = false;
  input.focus();
}

// ---- router ----------------------------------------------------------------------------------

let cleanup = null;  // the current view's teardown (the live tail's connection)
let generation = 0;  // a view whose answers arrive after the user left it must not draw

export async function render() {
  const { parts, q } = parseHash();
  if (cleanup) { cleanup(); cleanup = null; }
  const my = ++generation;
  const root = $('#view');
  const name = parts[0] || 'find';
  for (const a of document.querySelectorAll('[data-nav-top]')) {
    a.classList.toggle('active', a.dataset.navTop === (name === 'stream' ? 'find' : name));
  }
  const view = views[name];
  const ctx = {
    parts, q, root,
    alive: () => my === generation,
    onLeave: (fn) => { cleanup = fn; },
  };
  root.replaceChildren();
  if (flash) { root.append(h('div.flash', { role: 'status' }, flash)); flash = null; }
  if (!view) { root.append(errorBox(new ApiError(404, { message: `no view '${name}'` }))); return; }
  if (name === 'find') $('#q').value = q.get('q') || '';
  try {
    await view(ctx);
  } catch (err) {
    if (ctx.alive()) root.append(errorBox(err));
  }
  if (ctx.alive()) document.title = (root.querySelector('h1')?.textContent || 'timetrail') + ' · timetrail';
}

// ---- keyboard --------------------------------------------------------------------------------

// j/k move a selection through the view's list items ([data-nav]); Enter opens the selected
// item's first link.
function moveSelection(step) {
  const items = [...document.querySelectorAll('#view [data-nav]')];
  if (!items.length) return;
  let i = items.findIndex((el) => el.classList.contains('selected'));
  items[i]?.classList.remove('selected');
  i = i < 0 ? (step > 0 ? 0 : items.length - 1) : Math.min(Math.max(i + step, 0), items.length - 1);
  items[i].classList.add('selected');
  items[i].scrollIntoView({ block: 'nearest' });
}

let pendingG = false;
function onKey(ev) {
  const t = ev.target;
  const typing = t instanceof HTMLInputElement || t instanceof HTMLTextAreaElement || t instanceof HTMLSelectElement;
  if (ev.key === 'Escape' && typing) { t.blur(); return; }
  if (typing || ev.ctrlKey || ev.metaKey || ev.altKey) return;
  if (pendingG) {
    pendingG = false;
    const to = { a: '#/activity', l: '#/live', i: '#/integrity', f: '#/' }[ev.key];
    if (to) { ev.preventDefault(); go(to); }
    return;
  }
  if (ev.key === '/') { ev.preventDefault(); $('#q').focus(); $('#q').select(); } else if (ev.key === 'j') moveSelection(1);
  else if (ev.key === 'k') moveSelection(-1);
  else if (ev.key === 'g') pendingG = true;
  else if (ev.key === 'Enter') {
    const a = document.querySelector('#view [data-nav].selected a[href]');
    if (a) { ev.preventDefault(); a.click(); }
  }
}

// ---- start -----------------------------------------------------------------------------------

function start() {
  // A deep link by path (/ui/activity, served as index.html) becomes the same hash route.
  const rest = location.pathname.replace(/^\/ui\/?/, '');
  if (rest && rest !== 'index.html' && !location.hash) {
    history.replaceState(null, '', '/ui/#/' + rest + location.search);
  }
  $('#search').addEventListener('submit', (ev) => {
    ev.preventDefault();
    go(link('find', { q: $('#q').value.trim() }));
  });
  window.addEventListener('hashchange', render);
  document.addEventListener('keydown', onKey);
  // The sign-in box opens when the server first asks for a token (a server with
  // authentication off never does).
  onAuthError((err) => {
    refused = getToken() ? err : null;
    renderAuth();
    if (!getToken()) showSignIn(true);
  });
  renderAuth();
  render();
}

start();
