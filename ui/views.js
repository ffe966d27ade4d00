// The views, one per URL: find, a stream's timeline, state, property history, diff and revert,
// activity, the live tail and integrity. Each reads only the public HTTP API (api.js).
import { api, ApiError, LogTail, permissions, mayAdmin } from './api.js';
import { h, fmtTime, ago, isBackdated, jsonView, patchView, short, who } from './util.js';
import { link, go, errorBox, setFlash } from './app.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const DOC_TYPES = new Set(['$put', '$patch', '$delete']);
const PAGE = 20;

// A form of labelled fields whose submit goes to a new URL built from its values.
function filterForm(fields, values, toHref, submitLabel = 'Apply') {
  const inputs = {};
  const form = h('form.filters', {
    onsubmit: (ev) => {
      ev.preventDefault();
      const v = {};
      for (const [k, el] of Object.entries(inputs)) v[k] = el.type === 'checkbox' ? (el.checked ? 'true' : '') : el.value.trim();
      go(toHref(v));
    },
  });
  for (const f of fields) {
    const el = h('input', { name: f.name, id: 'f-' + f.name, type: f.type || 'text', placeholder: f.placeholder || '', autocomplete: 'off' });
    if (f.type === 'checkbox') el.checked = values.get(f.name) === 'true';
    else el.value = values.get(f.name) || '';
    inputs[f.name] = el;
    form.append(h('label.field' + (f.type === 'checkbox' ? '.check' : ''), h('span', f.label), el));
  }
  form.append(h('button', { type: 'submit' }, submitLabel));
  return form;
}

const streamLink = (s, ...rest) => h('a.stream', { href: link('stream', s, ...rest) }, s);

// The actor, linked to everything they changed (activity).
const actorLink = (m) => (m.actor
  ? h('a.actor', { href: link('activity', { actor: m.actor }), title: 'everything changed by ' + m.actor }, m.actor)
  : h('span.actor.muted', 'no actor'));

// Where a captured row's change came from in PostgreSQL (docs/capture.md, "What is recorded").
const sourceLine = (m) => (m.source && typeof m.source === 'object'
  ? h('span.source', { title: `LSN ${m.source.lsn}, committed ${m.source.commit_time}` },
    `${m.source.operation || 'change'} in ${m.source.table || 'the source'} · xid ${m.source.xid}`)
  : null);

function metaLine(e) {
  const m = who(e.metadata);
  return [
    actorLink(m),
    m.reason ? h('span.reason', { title: 'reason' }, '“' + m.reason + '”') : null,
  ];
}

// Valid and recorded times of a backdated correction, side by side.
function backdatedMark(e) {
  if (!isBackdated(e)) return null;
  return h('span.backdated', { title: 'valid from a time before it was recorded' },
    'backdated: valid from ', h('time', fmtTime(e.valid_from)), ', recorded ', h('time', fmtTime(e.recorded_at)));
}

// ---- find ------------------------------------------------------------------------------------

async function find(ctx) {
  const q = (ctx.q.get('q') || '').trim();
  const { root } = ctx;
  root.append(h('h1', q ? `Find “${q}”` : 'Find'),
    h('p.muted', 'A stream name, a prefix (public.orders/ lists the captured rows of a table), a table and key (public.orders/42) or an event id.'));
  const results = h('div.results');
  root.append(results);

  if (UUID.test(q)) {
    try {
      const e = await api.event(q);
      results.append(h('section.card', h('h2', 'Event ', h('code', e.id)), eventRow(e, true)));
    } catch (err) {
      results.append(errorBox(err));
    }
    return;
  }
  if (q) {
    try {
      const info = await api.info(q);
      if (info.exists) {
        results.append(h('section.card.exact', { dataset: { nav: '' } },
          h('h2', streamLink(q)), h('p.muted', `revision ${info.revision} · position ${info.position}${info.deleted ? ' · deleted' : ''}`)));
      }
    } catch (err) {
      if (!(err instanceof ApiError) || (err.status !== 404 && err.status !== 403 && err.status !== 400)) throw err;
    }
  }
  // A captured table (schema.table/): open one of its rows by its key.
  if (/^[^/]+\.[^/]+\/$/.test(q)) {
    const key = h('input#row-key', { type: 'text', placeholder: '42 (a composite key: 42,1)', autocomplete: 'off' });
    results.append(h('form.filters.rowkey', {
      onsubmit: (ev) => { ev.preventDefault(); if (key.value.trim()) go(link('stream', q + key.value.trim())); },
    }, h('label.field', h('span', `Row of ${q.slice(0, -1)} by key`), key), h('button', { type: 'submit' }, 'Open row')));
  }
  await streamList(ctx, q, results, ctx.q.get('cursor'));
}

// The streams under a prefix, most recently changed first, from the activity feed (the API has
// no list of streams: activity is the index of who changed what).
async function streamList(ctx, prefix, into, cursor) {
  const seen = new Map();
  let page;
  try {
    page = await api.activity({ stream_prefix: prefix, limit: 500, cursor });
  } catch (err) {
    // A token limited to prefixes may list only within them: say what to type.
    if (err instanceof ApiError && err.status === 403 && !prefix.includes('/')) {
      into.append(errorBox(err), h('p.muted.hint', 'Type one of your token’s stream prefixes in the search box (e.g. orders/) to list its streams.'));
      return;
    }
    throw err;
  }
  if (!ctx.alive()) return;
  for (const e of page.events) if (!seen.has(e.stream)) seen.set(e.stream, e);
  const tables = new Map();
  for (const s of seen.keys()) {
    const m = /^([^/]+\.[^/]+)\/(.+)$/.exec(s);
    if (m) tables.set(m[1], (tables.get(m[1]) || 0) + 1);
  }
  if (tables.size && !prefix.includes('/')) {
    into.append(h('section', h('h2', 'Tables'), h('div.chips', [...tables].map(([t, n]) =>
      h('a.chip', { href: link('find', { q: t + '/' }) }, t, h('span.count', String(n)))))));
  }
  into.append(h('h2', prefix ? `Streams under “${prefix}”` : 'Recently changed streams'));
  if (!seen.size) { into.append(h('p.muted.empty', 'No streams found.')); return; }
  into.append(h('ul.list.streams', [...seen.values()].map((e) => h('li', { dataset: { nav: '' } },
    streamLink(e.stream), h('span.type', e.type), metaLine(e), h('time.when', { title: e.recorded_at }, ago(e.recorded_at)))))); 
  if (page.cursor) into.append(h('a.more', { href: link('find', { q: prefix, cursor: page.cursor }) }, 'Older changes →'));
}

// One event as a list row: its stream, type, revision, who, why and when.
function eventRow(e, withStream) {
  return h('div.event', { dataset: { position: e.position } },
    withStream ? streamLink(e.stream) : null,
    h('span.type', e.type),
    h('span.rev', `rev ${e.revision} · pos ${e.position}`),
    metaLine(e),
    h('time.when', { title: e.recorded_at }, fmtTime(e.recorded_at)),
    backdatedMark(e));
}

// ---- a stream: header and tabs -----------------------------------------------------------------

const TABS = [['', 'Timeline'], ['state', 'State'], ['history', 'Property history'], ['diff', 'Diff'], ['revert', 'Revert']];

// The Revert tab only for a token that may revert this stream (admin scope, within its prefixes).
function streamHeader(ctx, stream, tab, info, admin) {
  const tabs = TABS.filter(([t]) => t !== 'revert' || admin);
  ctx.root.append(
    h('h1.stream-name', stream),
    h('p.muted.info', info.exists ? `revision ${info.revision} · position ${info.position}${info.deleted ? ' · deleted' : ''}` : 'no events'),
    h('nav.tabs', tabs.map(([t, label]) => h('a' + (t === tab ? '.active' : ''), { href: t ? link('stream', stream, t) : link('stream', stream) }, label))));
}

async function stream(ctx) {
  const name = ctx.parts[1];
  if (!name) return go('#/', { replace: true });
  const tab = ctx.parts[2] || '';
  const [info, who] = await Promise.all([api.info(name), permissions()]);
  if (!ctx.alive()) return;
  const admin = mayAdmin(who, name);
  streamHeader(ctx, name, tab, info, admin);
  if (!info.exists) { ctx.root.append(h('p.muted', 'This stream has no events.')); return; }
  if (tab === 'revert' && !admin) {
    ctx.root.append(h('p.muted#revert-not-allowed', 'Reverting needs a token with the admin scope for this stream; yours may read it.'));
    return;
  }
  const sub = { '': timeline, state, history, diff, revert }[tab];
  if (!sub) throw new ApiError(404, { message: `no tab '${tab}'` });
  await sub(ctx, name, info);
}

// ---- timeline --------------------------------------------------------------------------------

const memberAdds = (doc) => (doc && typeof doc === 'object' ? Object.entries(doc) : [])
  .map(([k, v]) => ({ op: 'add', path: '/' + k.replace(/~/g, '~0').replace(/\//g, '~1'), value: v }));

// A diff's patch as people read it: a deletion removes the document (the API's patch replaces
// it with null), and a creation adds each member.
function readablePatch(d) {
  if (d.from?.exists && !d.to?.exists) return [{ op: 'remove', path: '' }];
  if (!d.from?.exists && d.to?.exists) return memberAdds(d.to.state);
  return d.patch;
}

// The state change each event made: the diff between the revision before it and its own.
async function changeOf(name, e) {
  if (!DOC_TYPES.has(e.type)) return null;
  if (e.revision === 0) {
    const st = await api.entity(name, { at_revision: 0 });
    return { before: undefined, patch: st.exists ? memberAdds(st.state) : [] };
  }
  const d = await api.diff(name, { from: e.revision - 1, to: e.revision });
  return { before: d.from?.state, patch: readablePatch(d) };
}

async function timeline(ctx, name, info) {
  const from = ctx.q.get('from');
  const page = await api.stream(name, { direction: 'backward', limit: PAGE, from: from ?? undefined });
  const changes = await Promise.all(page.events.map((e) => changeOf(name, e).catch((err) => ({ error: err }))));
  if (!ctx.alive()) return;
  const list = h('ol.timeline');
  page.events.forEach((e, i) => {
    const c = changes[i];
    const m = who(e.metadata);
    list.append(h('li.tl-event' + (isBackdated(e) ? '.is-backdated' : ''), { dataset: { nav: '', revision: e.revision } },
      h('div.tl-head',
        h('span.type', e.type), h('span.rev', `rev ${e.revision}`),
        actorLink(m),
        m.reason ? h('span.reason', '“' + m.reason + '”') : null,
        sourceLine(m),
        h('time.when', { title: 'recorded ' + e.recorded_at }, fmtTime(e.recorded_at)),
        backdatedMark(e)),
      c?.error ? errorBox(c.error) : c ? patchView(c.patch, c.before) : h('pre.json.small', short(e.data, 400)),
      h('div.tl-links',
        h('a', { href: link('stream', name, 'state', { at_revision: e.revision }) }, 'state here'),
        h('a', { href: link('stream', name, 'diff', { from: e.revision, to: info.revision }) }, 'diff to latest'),
        h('a', { href: link('stream', name, 'revert', { to: e.revision }) }, 'revert to here'),
        h('span.muted.pos', `position ${e.position} · tx ${e.tx} · id ${e.id}`))));
  });
  ctx.root.append(list);
  const pager = h('div.pager');
  if (from !== null && Number(from) < info.revision) pager.append(h('a', { href: link('stream', name) }, '← Newest'));
  if (page.next !== null && page.next !== undefined) pager.append(h('a.older', { href: link('stream', name, { from: page.next }) }, 'Older →'));
  ctx.root.append(pager);
}

// ---- state at a point ----------------------------------------------------------------------------

async function state(ctx, name, info) {
  const q = ctx.q;
  const params = {};
  for (const k of ['at_revision', 'as_of', 'valid_at', 'known_at']) if (q.get(k)) params[k] = q.get(k);
  const at = q.get('at_revision') !== null ? Number(q.get('at_revision')) : info.revision;

  // A slider through the revisions: the system-time axis of this stream, one stop per event.
  const label = h('output.slider-label');
  const slider = h('input#rev-slider', { type: 'range', min: 0, max: info.revision, step: 1, value: Number.isNaN(at) ? info.revision : at, 'aria-label': 'revision' });
  let timer = null;
  slider.addEventListener('input', () => {
    label.textContent = `revision ${slider.value}`;
    clearTimeout(timer);
    timer = setTimeout(() => go(link('stream', name, 'state', { at_revision: slider.value }), { replace: true }), 150);
  });
  label.textContent = `revision ${slider.value} of ${info.revision}`;
  ctx.root.append(h('section.controls',
    h('div.slider', h('span.muted', 'older'), slider, h('span.muted', 'newer'), label),
    filterForm([{ name: 'as_of', label: 'System time (as of)', placeholder: '2026-11-22T13:40:00Z' }], q,
      (v) => link('stream', name, 'state', v)),
    filterForm([{ name: 'valid_at', label: 'Valid at', placeholder: '2026-06-01' },
      { name: 'known_at', label: 'as known at', placeholder: 'now' }], q,
    (v) => link('stream', name, 'state', v))));

  const st = await api.entity(name, params);
  if (!ctx.alive()) return;
  const m = who(st.metadata);
  const desc = params.as_of ? `as of ${params.as_of}` : params.valid_at ? `valid at ${params.valid_at}${params.known_at ? ', as known at ' + params.known_at : ''}`
    : params.at_revision ? `at revision ${params.at_revision}` : 'now';
  ctx.root.append(h('section.card.state',
    h('h2', 'State ', desc),
    st.exists === false && st.revision === null ? h('p.muted', 'The entity did not exist yet.') : h('p.meta',
      h('span.rev', `revision ${st.revision} · position ${st.position}`), ' ',
      actorLink(m), m.reason ? h('span.reason', ' “' + m.reason + '”') : null, ' ',
      h('time', 'recorded ' + fmtTime(st.recorded_at)), ' · ', h('time', 'valid from ' + fmtTime(st.valid_from))),
    st.exists ? jsonView(st.state, new Map(), (ptr) => go(link('stream', name, 'history', { path: ptr })))
      : h('p.muted.deleted', 'Deleted (or not yet created) at this point.'),
    st.revision !== null && st.revision !== undefined ? h('div.tl-links',
      h('a', { href: link('stream', name, 'diff', { from: st.revision, to: info.revision }) }, 'diff to latest'),
      h('a', { href: link('stream', name, 'revert', { to: st.revision }) }, 'revert to this')) : null));
}

// ---- property history ----------------------------------------------------------------------------

async function history(ctx, name) {
  const q = ctx.q;
  const path = q.get('path') || '';
  ctx.root.append(filterForm([
    { name: 'path', label: 'Property (JSON pointer)', placeholder: '/status' },
    { name: 'valid_time', label: 'in valid time', type: 'checkbox' },
    { name: 'known_at', label: 'as known at', placeholder: 'now' }], q,
  (v) => link('stream', name, 'history', v), 'Show'));
  if (!path) {
    const st = await api.entity(name);
    if (!ctx.alive()) return;
    const keys = st.state && typeof st.state === 'object' ? Object.keys(st.state) : [];
    ctx.root.append(h('p.muted', 'Pick a property:'), h('div.chips', keys.map((k) =>
      h('a.chip', { href: link('stream', name, 'history', { path: '/' + k.replace(/~/g, '~0').replace(/\//g, '~1') }) }, k))));
    return;
  }
  const params = { path, limit: 50, cursor: q.get('cursor') || undefined };
  if (q.get('valid_time') === 'true') { params.valid_time = 'true'; if (q.get('known_at')) params.known_at = q.get('known_at'); }
  const r = await api.history(name, params);
  if (!ctx.alive()) return;
  ctx.root.append(h('h2', 'History of ', h('code', path)),
    h('div.scroll', h('table.history', h('thead', h('tr', ['value', 'from', 'to', 'actor', 'reason'].map((c) => h('th', c)))),
      h('tbody', r.intervals.map((iv) => h('tr', { dataset: { nav: '' } },
        h('td.value', iv.exists ? h('code', short(iv.value, 120)) : h('span.muted', '(absent)')),
        h('td', h('a', { href: link('stream', name, 'state', { at_revision: iv.from.revision }) }, `rev ${iv.from.revision}`), ' ',
          h('time', fmtTime(params.valid_time ? iv.from.valid_from : iv.from.recorded_at))),
        h('td', iv.to ? [h('span', `rev ${iv.to.revision}`), ' ', h('time', fmtTime(params.valid_time ? iv.to.valid_from : iv.to.recorded_at))] : h('span.muted', 'now')),
        h('td.actor', who(iv.metadata).actor || ''),
        h('td.reason', who(iv.metadata).reason || '')))))));
  if (r.cursor) ctx.root.append(h('a.more', { href: link('stream', name, 'history', { ...Object.fromEntries(q), cursor: r.cursor }) }, 'Later intervals →'));
}

// ---- diff ------------------------------------------------------------------------------------------

// "3" is a revision, anything else a time.
const point = (v, rev, time) => (v === '' || v === null ? {} : /^\d+$/.test(v) ? { [rev]: v } : { [time]: v });

async function diff(ctx, name, info) {
  const q = ctx.q;
  const from = q.get('from') ?? String(Math.max(info.revision - 1, 0));
  const to = q.get('to') ?? String(info.revision);
  ctx.root.append(filterForm([
    { name: 'from', label: 'From (revision or time)', placeholder: '0' },
    { name: 'to', label: 'To (revision or time)', placeholder: 'latest' }], new URLSearchParams({ from, to }),
  (v) => link('stream', name, 'diff', v), 'Compare'));
  const d = await api.diff(name, { ...point(from, 'from', 'from_time'), ...point(to, 'to', 'to_time'), events: 'true', limit: 50 });
  if (!ctx.alive()) return;
  const left = new Map();
  const right = new Map();
  const patch = readablePatch(d);
  for (const op of patch) {
    if (op.op === 'remove') left.set(op.path, 'del');
    else if (op.op === 'add') right.set(op.path, 'ins');
    else { left.set(op.path, 'del'); right.set(op.path, 'ins'); }
  }
  const side = (s, marks, title) => h('div.pane', h('h3', title, ' ', h('span.muted', s && s.revision !== null && s.revision !== undefined ? `rev ${s.revision} · ${fmtTime(s.recorded_at)}` : '')),
    s?.exists ? jsonView(s.state, marks) : h('p.muted', '(does not exist)'));
  ctx.root.append(h('div.sidebyside', side(d.from, left, 'From'), side(d.to, right, 'To')),
    h('h2', 'Changes ', h('span.muted', `(${patch.length})`)), patchView(patch, d.from?.state));
  if (d.events?.length) {
    ctx.root.append(h('h2', 'Events in between'), h('ul.list', d.events.map((e) => h('li', { dataset: { nav: '' } }, eventRow(e, false)))));
    if (d.cursor) ctx.root.append(h('p.muted', 'More events in between than shown; see the timeline.'));
  }
}

// ---- revert ----------------------------------------------------------------------------------------

async function revert(ctx, name, info) {
  const q = ctx.q;
  const toRaw = q.get('to');
  ctx.root.append(filterForm([{ name: 'to', label: 'Revert to revision', placeholder: String(Math.max(info.revision - 1, 0)) }], q,
    (v) => link('stream', name, 'revert', v), 'Preview'));
  if (toRaw === null || !/^\d+$/.test(toRaw)) {
    ctx.root.append(h('p.muted', 'Choose the revision to go back to (the timeline has a “revert to here” link on every event).'));
    return;
  }
  const to = Number(toRaw);
  const [target, d] = await Promise.all([
    api.stream(name, { from: to, limit: 1 }),
    api.diff(name, { from: info.revision, to }),
  ]);
  if (!ctx.alive()) return;
  const targetEvent = target.events[0];
  const source = who(targetEvent?.metadata).source;
  // A captured row is put back in its source database, where the change happens; the capture
  // then records it. Reverting only the copy in the store would make the two disagree.
  let capture = null;
  if (source?.table) {
    try { capture = await api.capture(); } catch (err) { if (!(err instanceof ApiError) || err.status !== 404) throw err; }
  }
  const reason = h('textarea#reason', { required: true, rows: 2, placeholder: 'Why? (recorded with the revert)' });
  const actor = h('input#actor', { type: 'text', placeholder: 'optional: who asks for it' });
  const result = h('div.result');
  const section = h('section.card.revert',
    h('h2', `Revert to revision ${to}`),
    capture
      ? h('p', 'This row is captured from PostgreSQL: the revert puts it back in the source database as it was at revision ',
        h('strong', String(to)), ', in one transaction that says it is a revert; the capture then records it like any other change.')
      : [h('p', 'This appends a new event that restores the state of revision ', h('strong', String(to)),
        '. Nothing is erased: the history keeps every change, and the revert itself.'),
      h('p.expected', 'Protects against concurrent changes: expected revision ', h('strong#expected', String(info.revision)),
        '. If anyone changes the stream first, the revert is refused.')],
    h('h3', 'What it will change'), patchView(readablePatch(d), d.from?.state));
  ctx.root.append(section);

  if (capture) {
    const toTime = targetEvent.valid_from;
    const body = (dry) => ({ streams: [name], to: toTime, dry_run: dry, reason: reason.value.trim(), actor: actor.value.trim() || undefined });
    section.append(h('h3', 'SQL it will run in the source database'), h('p.muted', `the row's state at source time ${toTime}`));
    const sql = h('pre.sql#sql', 'loading…');
    section.append(sql);
    try {
      const dry = await api.captureRevert({ streams: [name], to: toTime, dry_run: true });
      sql.textContent = dry.statements.join(';\n') + ';';
    } catch (err) { sql.replaceWith(errorBox(err)); }
    section.append(h('form.revert-form', {
      onsubmit: async (ev) => {
        ev.preventDefault();
        result.replaceChildren();
        if (!reason.value.trim()) { result.append(h('div.error', 'A reason is required.')); return; }
        try {
          const r = await api.captureRevert(body(false));
          result.append(h('div.flash', `Reverted ${r.rows_changed} row(s) in the source; the capture records the change.`));
        } catch (err) { result.append(errorBox(err)); }
      },
    }, h('label', 'Reason', reason), h('label', 'Actor', actor), h('button.danger#do-source-revert', { type: 'submit' }, 'Revert in the source database')), result);
    return;
  }
  section.append(h('form.revert-form', {
    onsubmit: async (ev) => {
      ev.preventDefault();
      result.replaceChildren();
      if (!reason.value.trim()) { result.append(h('div.error', 'A reason is required.')); return; }
      try {
        const r = await api.revert(name, { to_revision: to, expected_revision: info.revision, reason: reason.value.trim(), actor: actor.value.trim() || undefined });
        setFlash(`Reverted to revision ${to}: new revision ${r.revision}.`);
        go(link('stream', name));
      } catch (err) { result.append(errorBox(err)); }
    },
  }, h('label', 'Reason', reason), h('label', 'Actor', actor), h('button.danger#do-revert', { type: 'submit' }, 'Revert')), result);
}

// ---- activity ---------------------------------------------------------------------------------------

async function activity(ctx) {
  const q = ctx.q;
  ctx.root.append(h('h1', 'Activity'), filterForm([
    { name: 'actor', label: 'Actor', placeholder: 'alice' },
    { name: 'stream_prefix', label: 'Stream prefix', placeholder: 'public.orders/' },
    { name: 'type', label: 'Types', placeholder: '$put,$patch' },
    { name: 'since', label: 'Since', placeholder: '2026-11-01' },
    { name: 'until', label: 'Until', placeholder: 'now' }], q, (v) => link('activity', v)));
  const params = Object.fromEntries(['actor', 'stream_prefix', 'type', 'since', 'until', 'cursor', 'limit'].map((k) => [k, q.get(k) || undefined]));
  const page = await api.activity({ ...params, limit: params.limit || 50 });
  if (!ctx.alive()) return;
  if (!page.events.length) { ctx.root.append(h('p.muted.empty', 'No matching events.')); return; }
  ctx.root.append(h('div.scroll', h('table.activity',
    h('thead', h('tr', ['when', 'stream', 'type', 'actor', 'reason', ''].map((c) => h('th', c)))),
    h('tbody', page.events.map((e) => h('tr', { dataset: { nav: '', position: e.position } },
      h('td', h('time', { title: e.recorded_at }, fmtTime(e.recorded_at))),
      h('td', streamLink(e.stream)), h('td', h('span.type', e.type)),
      h('td.actor', who(e.metadata).actor || ''), h('td.reason', who(e.metadata).reason || ''),
      h('td', backdatedMark(e))))))));
  const pager = h('div.pager');
  if (q.get('cursor')) pager.append(h('a', { href: link('activity', { ...params, cursor: undefined }) }, '← Newest'));
  if (page.cursor) pager.append(h('a.older', { href: link('activity', { ...params, cursor: page.cursor }) }, 'Older →'));
  ctx.root.append(pager);
}

// ---- live --------------------------------------------------------------------------------------------

async function live(ctx) {
  const q = ctx.q;
  const prefix = q.get('stream_prefix') || '';
  const types = q.get('types') || '';
  ctx.root.append(h('h1', 'Live'), filterForm([
    { name: 'stream_prefix', label: 'Stream prefix', placeholder: 'all' },
    { name: 'types', label: 'Types', placeholder: 'all' }], q, (v) => link('live', v), 'Follow'));
  // Start where the URL says (from=POS), or a little before the head, so that the page shows
  // the latest events at once.
  let from = Number(q.get('from'));
  if (!Number.isInteger(from) || from < 1) {
    const head = (await api.log({ limit: 1, stream_prefix: prefix || undefined })).head;
    from = Math.max(1, head - 19);
  }
  if (!ctx.alive()) return;
  const status = h('span.status#live-status', 'connecting…');
  const list = h('ol.list.live#live-events');
  const count = h('span.muted');
  let n = 0;
  const tail = new LogTail({
    from, stream_prefix: prefix || undefined, types: types || undefined,
    onEvent: (e) => {
      list.prepend(h('li', { dataset: { nav: '', position: e.position } }, eventRow(e, true)));
      if (list.children.length > 500) list.lastChild.remove();  // a tail, not an archive
      count.textContent = `${++n} received`;
    },
    onStatus: (s, last, err) => {
      status.className = 'status ' + s;
      status.textContent = s === 'live' ? 'live' : s === 'paused' ? `paused after position ${last ?? '—'}`
        : s === 'reconnecting' ? `reconnecting; resumes after position ${last ?? '—'}` : 'stopped';
      if (err && s === 'error') ctx.root.append(errorBox(err));
    },
  });
  const toggle = h('button#live-toggle', { type: 'button' }, 'Pause');
  toggle.addEventListener('click', () => {
    if (tail.stopped) { tail.start(); toggle.textContent = 'Pause'; } else { tail.stop(); toggle.textContent = 'Resume'; }
  });
  ctx.root.append(h('div.live-bar', status, toggle, count), list);
  tail.start();
  ctx.onLeave(() => tail.stop());
}

// ---- integrity ---------------------------------------------------------------------------------------

async function integrity(ctx) {
  ctx.root.append(h('h1', 'Integrity'));
  const head = await api.integrity();
  if (!ctx.alive()) return;
  ctx.root.append(h('section.card',
    h('h2', 'Chain head'),
    h('p', 'position ', h('strong#head-position', String(head.position))),
    h('p', h('code.hash#head-hash', head.hash)),
    h('p.muted', 'Keep this head somewhere else: a later verification proves nothing before it was changed.')));
  const last = h('section.card#last-verify', h('h2', 'Last verification'));
  ctx.root.append(last);
  const showLast = async () => {
    last.replaceChildren(h('h2', 'Last verification'));
    try {
      const audit = await api.stream('$audit', { direction: 'backward', limit: 200 });
      const v = audit.events.find((e) => e.type === 'verify');
      if (!v) { last.append(h('p.muted', 'No verification in the recent audit log.')); return; }
      last.append(verifyResult(v.data), h('p.muted', 'by ', who(v.metadata).actor || 'unknown', ' at ', fmtTime(v.recorded_at)));
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) last.append(h('p.muted', 'Never verified.'));
      else if (err instanceof ApiError && err.status === 403) last.append(h('p.muted', 'Only admin tokens without prefixes can read the $audit stream.'));
      else last.append(errorBox(err));
    }
  };
  await showLast();
  if (!mayAdmin(await permissions())) {
    ctx.root.append(h('p.muted#verify-not-allowed', 'Verifying needs a token with the admin scope.'));
    return;
  }
  const out = h('div.result#verify-result');
  ctx.root.append(h('section.card',
    h('h2', 'Verify now'),
    h('p.muted', 'Recomputes the whole chain (admin scope). The result is recorded in $audit.'),
    h('button#verify', {
      type: 'button',
      onclick: async (ev) => {
        ev.target.disabled = true;
        out.replaceChildren(h('p.muted', 'verifying…'));
        try {
          const r = await api.verify();
          out.replaceChildren(verifyResult(r));
          await showLast();
        } catch (err) { out.replaceChildren(errorBox(err)); }
        ev.target.disabled = false;
      },
    }, 'Verify'), out));
}

function verifyResult(r) {
  return h('div.verify.' + (r.ok ? 'ok' : 'bad'),
    h('strong', r.ok ? 'OK' : 'CHANGED'), ' ',
    `${r.events_checked} events checked`,
    r.ok ? '' : ` · first bad position ${r.first_bad_position}: ${r.message}`,
    r.head ? h('span.muted', ` · head ${r.head.position}`) : null);
}

export const views = { find, stream, activity, live, integrity };
