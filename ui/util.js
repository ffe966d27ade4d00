// Small DOM and formatting helpers shared by the views.

// h('div.card#x', {onclick}, child...) builds an element; strings become text (never HTML).
export function h(tag, attrs, ...children) {
  const m = /^([a-z0-9]+)?((?:[.#][\w-]+)*)$/i.exec(tag);
  const el = document.createElement(m?.[1] || 'div');
  for (const part of (m?.[2] || '').match(/[.#][\w-]+/g) || []) {
    if (part[0] === '.') el.classList.add(part.slice(1));
    else el.id = part.slice(1);
  }
  if (attrs && (typeof attrs !== 'object' || attrs instanceof Node || Array.isArray(attrs))) {
    children.unshift(attrs);
    attrs = null;
  }
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k in el && k !== 'list' && k !== 'type') el[k] = v;
    else el.setAttribute(k, v === true ? '' : v);
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

// Times as the API writes them (RFC 3339 UTC with microseconds), shortened for reading.
export function fmtTime(t) {
  if (!t) return '';
  return t.replace('T', ' ').replace(/\.(\d{3})\d*Z$/, '.$1Z');
}

// How long ago, for lists read at a glance.
export function ago(t) {
  const ms = Date.now() - Date.parse(t);
  if (Number.isNaN(ms)) return '';
  const s = Math.round(ms / 1000);
  if (s < 60) return `${Math.max(s, 0)}s ago`;
  if (s < 3600) return `${Math.round(s / 60)}m ago`;
  if (s < 86400) return `${Math.round(s / 3600)}h ago`;
  return `${Math.round(s / 86400)}d ago`;
}

// An event is a backdated correction when it is valid from a time before it was recorded
// (a second of slack: appends without valid_from get the same time for both).
export function isBackdated(e) {
  return e.valid_from && e.recorded_at && Date.parse(e.recorded_at) - Date.parse(e.valid_from) > 1000;
}

// A value as JSON on one line, cut at n characters.
export const short = (v, n = 80) => {
  const s = JSON.stringify(v);
  return s === undefined ? '—' : s.length > n ? s.slice(0, n - 1) + '…' : s;
};

// The value at a JSON pointer (RFC 6901), or undefined.
export function atPointer(doc, ptr) {
  if (ptr === '') return doc;
  let v = doc;
  for (const raw of ptr.slice(1).split('/')) {
    const k = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (v === null || typeof v !== 'object' || !(k in v)) return undefined;
    v = v[k];
  }
  return v;
}

const escapePtr = (k) => String(k).replace(/~/g, '~0').replace(/\//g, '~1');

// A JSON document, pretty-printed, each line a span; lines at or under a pointer in "marks"
// (a Map pointer -> class) get that class, so a diff shows what changed. "onKey" makes member
// names clickable (property history).
export function jsonView(doc, marks = new Map(), onKey = null) {
  const pre = h('pre.json');
  const line = (depth, ptr, parts) => {
    let cls = '';
    for (const [p, c] of marks) {
      if (ptr === p || ptr.startsWith(p + '/')) { cls = c; break; }
    }
    pre.append(h('span.line' + (cls ? '.' + cls : ''), { dataset: { ptr } }, '  '.repeat(depth), parts));
  };
  const walk = (v, depth, ptr, key, last) => {
    const keyPart = key === null ? [] : [
      onKey ? h('a.key', { href: '#', onclick: (ev) => { ev.preventDefault(); onKey(ptr); } }, JSON.stringify(key))
            : h('span.key', JSON.stringify(key)),
      ': '];
    const comma = last ? '' : ',';
    if (v !== null && typeof v === 'object') {
      const entries = Array.isArray(v) ? v.map((x, i) => [i, x]) : Object.entries(v);
      const [open, close] = Array.isArray(v) ? ['[', ']'] : ['{', '}'];
      if (!entries.length) { line(depth, ptr, [keyPart, open + close + comma]); return; }
      line(depth, ptr, [keyPart, open]);
      entries.forEach(([k, x], i) =>
        walk(x, depth + 1, ptr + '/' + escapePtr(k), Array.isArray(v) ? null : k, i === entries.length - 1));
      line(depth, ptr, [close + comma]);
    } else {
      line(depth, ptr, [keyPart, h('span.v-' + (v === null ? 'null' : typeof v), JSON.stringify(v)), comma]);
    }
  };
  if (doc === undefined) pre.append(h('span.muted', '(does not exist)'));
  else walk(doc, 0, '', null, true);
  return pre;
}

// JSON Patch operations as readable lines: path, old value, new value.
export function patchView(patch, before) {
  if (!patch || !patch.length) return h('p.muted.nochange', 'no change to the document');
  return h('ul.patch', patch.map((op) => {
    const old = atPointer(before, op.path);
    const sign = op.op === 'add' ? '+' : op.op === 'remove' ? '−' : '~';
    return h('li.op-' + op.op, h('span.sign', sign), h('code.path', op.path || '(whole document)'), ' ',
      op.op === 'add' ? h('span.new', short(op.value))
        : op.op === 'remove' ? h('span.old', short(old))
          : [h('span.old', short(old)), ' → ', h('span.new', short(op.value))]);
  }));
}

// The metadata members every view shows first.
export const who = (m) => (m && typeof m === 'object' ? m : {});
