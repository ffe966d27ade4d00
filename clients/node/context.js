// Who and why for the changes `timetrail capture` records from PostgreSQL: the request's context
// (actor, reason, request_id, ...) lives in an AsyncLocalStorage, and every write statement sent
// through an instrumented node-postgres pool ends with a `/*timetrail {JSON}*/` comment, which
// the statement trigger of sql/timetrail_context.sql turns into the transaction's context.
// No dependency: node-postgres is only wrapped, never imported.

import { AsyncLocalStorage, AsyncResource } from 'node:async_hooks';
import { randomUUID } from 'node:crypto';

const storage = new AsyncLocalStorage();

/** Runs fn with ctx merged over the current context (inner keys win); returns what fn returns. */
export function withContext(ctx, fn) {
  if (ctx === null || typeof ctx !== 'object' || Array.isArray(ctx)) {
    throw new TypeError('withContext: the context must be an object such as { actor: "alice" }');
  }
  if (typeof fn !== 'function') throw new TypeError('withContext: fn must be a function');
  return storage.run({ ...storage.getStore(), ...ctx }, fn);
}

/** The active context (a copy), or undefined outside withContext and contextMiddleware. */
export function currentContext() {
  const ctx = storage.getStore();
  return ctx === undefined ? undefined : { ...ctx };
}

// Statements that cannot write: they get no comment (a SELECT calling a writing function is
// the application's to attribute with timetrail.set_context).
const READ_ONLY = new Set(['SELECT', 'SHOW', 'SET', 'RESET', 'BEGIN', 'START', 'COMMIT',
  'ROLLBACK', 'SAVEPOINT', 'RELEASE']);

/** The first keyword after leading blanks and comments (`--` lines, nested block comments). */
function leadingWords(sql) {
  let i = 0;
  for (;;) {
    while (i < sql.length && /\s/.test(sql[i])) i++;
    if (sql.startsWith('--', i)) {
      const nl = sql.indexOf('\n', i);
      if (nl < 0) return [];
      i = nl + 1;
    } else if (sql.startsWith('/*', i)) {
      let depth = 1;
      i += 2;
      while (i < sql.length && depth > 0) {
        if (sql.startsWith('/*', i)) { depth++; i += 2; } else if (sql.startsWith('*/', i)) { depth--; i += 2; } else i++;
      }
    } else {
      break;
    }
  }
  return (sql.slice(i).match(/^[A-Za-z_]+(\s+[A-Za-z_]+)?/)?.[0] ?? '').toUpperCase().split(/\s+/);
}

function canWrite(sql) {
  const [first, second] = leadingWords(sql);
  if (!first) return false; // empty, or only comments
  if (READ_ONLY.has(first)) return false;
  return !(first === 'PREPARE' && second === 'TRANSACTION');
}

/** True when the text already ends with a `/*timetrail ...*\/` comment (trailing blanks and ';'
 * aside), which then stays the statement's context. */
function hasContextComment(sql) {
  const tail = sql.replace(/[\s;]+$/, '');
  const open = tail.lastIndexOf('/*timetrail ');
  return open >= 0 && tail.endsWith('*/') && tail.indexOf('*/', open) === tail.length - 2;
}

/** The context as the comment's JSON: without '/' (it could close the comment), nor '%', '?',
 * '$' (drivers could take them for parameter placeholders); JSON reads the escapes back. */
export function encodeContext(ctx) {
  const members = Object.fromEntries(Object.entries(ctx).filter(([, v]) => v !== undefined));
  if (Object.keys(members).length === 0) return '';
  return JSON.stringify(members).replace(/[/%?$]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/**
 * The statement with the active context appended as a trailing `/*timetrail {JSON}*\/` comment,
 * or the statement unchanged: outside a context, for statements that cannot write, and for
 * statements that already end with such a comment.
 */
export function annotate(sql, ctx = storage.getStore()) {
  if (typeof sql !== 'string') throw new TypeError('annotate: the statement must be a string');
  if (ctx === undefined || ctx === null || !canWrite(sql) || hasContextComment(sql)) return sql;
  const json = encodeContext(ctx);
  if (json === '') return sql;
  // The comment goes before trailing blanks and semicolons; after a `--` comment on the last
  // line it starts a new line, or it would be part of that comment.
  const body = sql.replace(/[\s;]+$/, '');
  const lastLine = body.slice(body.lastIndexOf('\n') + 1);
  const sep = lastLine.includes('--') ? '\n' : ' ';
  return `${body}${sep}/*timetrail ${json}*/${sql.slice(body.length)}`;
}

/**
 * An Express-style `(req, res, next)` middleware that runs the rest of the request in a context:
 * `request_id` from the `X-Request-Id` header (or a new UUID, also sent back in that header),
 * and the members `fromRequest(req)` returns (e.g. `{ actor: req.user.name }`; it may be async).
 * Register it after body parsers: in some versions their callbacks leave the request's context.
 */
export function contextMiddleware(fromRequest = () => ({})) {
  if (typeof fromRequest !== 'function') {
    throw new TypeError('contextMiddleware: fromRequest must be a function (req) => context');
  }
  return function timetrailContext(req, res, next) {
    let requestId = req.headers?.['x-request-id'];
    if (Array.isArray(requestId)) [requestId] = requestId;
    if (typeof requestId !== 'string' || requestId === '') requestId = randomUUID();
    if (typeof res?.setHeader === 'function' && !res.headersSent) res.setHeader('X-Request-Id', requestId);
    const run = (extra) => {
      if (extra !== undefined && (extra === null || typeof extra !== 'object')) {
        throw new TypeError('contextMiddleware: fromRequest must return an object');
      }
      withContext({ request_id: requestId, ...extra }, next);
    };
    try {
      const extra = fromRequest(req);
      if (typeof extra?.then === 'function') extra.then(run).catch(next);
      else run(extra);
    } catch (err) {
      next(err);
    }
  };
}

const instrumented = Symbol('timetrail.instrumented');

/** The query arguments with the statement annotated, as node-postgres takes them. */
function annotateQueryArgs(config, ctx) {
  if (typeof config === 'string') return annotate(config, ctx);
  if (config === null || typeof config !== 'object') return config; // node-postgres reports it
  if (typeof config.submit === 'function') {
    // A Submittable (pg.Query, pg-cursor, pg-query-stream) is sent as it is: annotate in place.
    for (const target of [config, config.cursor]) {
      if (target && typeof target.text === 'string') {
        const text = annotate(target.text, ctx);
        if (text !== target.text) {
          target.text = text;
          if (target.name) target.name = undefined; // see below
        }
      }
    }
    return config;
  }
  if (typeof config.text !== 'string') return config;
  const text = annotate(config.text, ctx);
  if (text === config.text) return config;
  // A named prepared statement with a per-request comment would be prepared once per request
  // (and clash with the name's first text): the annotated statement is sent unnamed.
  const { name, ...rest } = config;
  return { ...rest, text };
}

function instrumentClient(client) {
  if (client[instrumented]) return client;
  const query = client.query;
  client.query = function timetrailQuery(config, ...rest) {
    return query.call(this, annotateQueryArgs(config, storage.getStore()), ...rest);
  };
  client[instrumented] = true;
  return client;
}

/**
 * Makes every write statement sent through a node-postgres Pool (`pool.query`, and the clients
 * `pool.connect()` hands out) or Client carry the active context. Returns its argument.
 */
export function instrumentPg(poolOrClient) {
  if (!poolOrClient || typeof poolOrClient.query !== 'function') {
    throw new TypeError('instrumentPg: expected a node-postgres Pool or Client');
  }
  if (poolOrClient[instrumented]) return poolOrClient;
  const isPool = 'idleCount' in poolOrClient && typeof poolOrClient.connect === 'function';
  if (!isPool) return instrumentClient(poolOrClient);
  const pool = poolOrClient;
  const connect = pool.connect;
  // pool.query calls pool.connect with a callback. A client freed by another request calls it
  // from that request's async context, so the callback is bound to the caller's.
  pool.connect = function timetrailConnect(callback) {
    if (typeof callback === 'function') {
      const bound = AsyncResource.bind((err, client, release) =>
        callback(err, client ? instrumentClient(client) : client, release));
      return connect.call(this, bound);
    }
    return connect.call(this).then(instrumentClient);
  };
  const query = pool.query;
  // Annotated here too, in the caller's context, before the pool waits for a client.
  pool.query = function timetrailPoolQuery(config, ...rest) {
    return query.call(this, annotateQueryArgs(config, storage.getStore()), ...rest);
  };
  pool[instrumented] = true;
  return pool;
}
