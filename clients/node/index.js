// A client for the timetrail HTTP API v1 (docs/http-api.md) for Node 18 and later, with no
// dependencies: requests use the global fetch, subscriptions (server-sent events) node:http.

import { randomUUID } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';

export {
  annotate, contextMiddleware, currentContext, encodeContext, instrumentPg, withContext,
} from './context.js';

/** A request failed: `status` is the HTTP status (null when the server could not be reached),
 * `code` the API's `error` field, `message` its explanation and `body` the whole error object. */
export class TimetrailError extends Error {
  constructor(status, code, message, body) {
    super(status ? `${status} ${code}: ${message}` : `${code}: ${message}`);
    this.name = 'TimetrailError';
    this.status = status;
    this.code = code;
    this.message = message;
    this.body = body || {};
  }
}

/** 409 `wrong_expected_revision`: the stream is not at the revision the write expected. */
export class WrongExpectedRevision extends TimetrailError {
  constructor(status, code, message, body) {
    super(status, code, message, body);
    this.name = 'WrongExpectedRevision';
  }

  /** The stream that was not at the expected revision. */
  get stream() {
    return this.body.stream ?? null;
  }

  /** Where the stream is (null when it has no events). */
  get actualRevision() {
    return this.body.actual_revision ?? null;
  }
}

/** 404 `not_found`: no such stream, event, consumer or endpoint. */
export class NotFound extends TimetrailError {
  constructor(status, code, message, body) {
    super(status, code, message, body);
    this.name = 'NotFound';
  }
}

/** The server could not be reached or the connection broke (`status` is null). */
export class ConnectionFailed extends TimetrailError {
  constructor(message) {
    super(null, 'connection_failed', message);
    this.name = 'ConnectionFailed';
  }
}

/** Builds the error for an error response (`body` is its parsed JSON, if any). */
export function errorFromResponse(status, body) {
  let code;
  let message;
  if (body && typeof body === 'object' && typeof body.error === 'string') {
    code = body.error;
    message = String(body.message ?? '');
  } else {
    code = 'http_error';
    message = `HTTP ${status}`;
    body = body && typeof body === 'object' ? body : {};
  }
  if (code === 'wrong_expected_revision') return new WrongExpectedRevision(status, code, message, body);
  if (status === 404) return new NotFound(status, code, message, body);
  return new TimetrailError(status, code, message, body);
}

/** Formats a time as the API takes it: a Date becomes RFC 3339 UTC, a string (RFC 3339 or a
 * plain date) is passed on, a number is microseconds since the epoch. */
export function formatTime(value) {
  if (value instanceof Date) return value.toISOString();
  return String(value);
}

/** Parses a time the API returns (`2026-11-22T13:40:00.000000Z`) into a Date (milliseconds:
 * the microseconds are dropped; keep the string when they matter). */
export function parseTime(value) {
  return new Date(value);
}

/** An event to append. It gets a fresh UUID unless `id` is given, so that re-sending the same
 * event list after a failure is answered as an idempotent replay, not stored twice. */
export function newEvent(type, data, { metadata, id, valid_from: validFrom } = {}) {
  const event = { id: id || randomUUID(), type };
  if (data !== undefined && data !== null) event.data = data;
  if (metadata !== undefined && metadata !== null) event.metadata = metadata;
  if (validFrom !== undefined && validFrom !== null) event.valid_from = formatTime(validFrom);
  return event;
}

/** One stream's part of a transaction (see Client#transaction). */
export function streamAppend(stream, events, expectedRevision = 'any') {
  return { stream, expected_revision: expectedRevision, events: [...events] };
}

function seg(value) {
  return encodeURIComponent(value);
}

function optTime(value) {
  return value === undefined || value === null ? undefined : formatTime(value);
}

function buildQuery(params) {
  const parts = [];
  for (const [key, raw] of Object.entries(params)) {
    if (raw === undefined || raw === null) continue;
    let value = raw;
    if (typeof value === 'boolean') value = value ? 'true' : 'false';
    else if (Array.isArray(value)) value = value.join(',');
    parts.push(`${encodeURIComponent(key)}=${encodeURIComponent(String(value))}`);
  }
  return parts.join('&');
}

function sleep(ms, signal) {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** A timetrail server at `baseUrl` (`http://127.0.0.1:7070`).
 *
 * `token` is an API token sent as `Authorization: Bearer`; `timeout` the time limit of each
 * request in milliseconds (default 30000). Every read takes `minPosition` (a `position` a write
 * answered) and `timeoutMs`: the server then waits until that position is readable. Failures
 * reject with TimetrailError. */
export class Client {
  constructor(baseUrl, { token, timeout = 30000 } = {}) {
    this.baseUrl = String(baseUrl).replace(/\/+$/, '');
    this.token = token ?? null;
    this.timeout = timeout;
  }

  // -- plumbing ---------------------------------------------------------------------------

  _headers() {
    const headers = { Accept: 'application/json' };
    if (this.token) headers.Authorization = `Bearer ${this.token}`;
    return headers;
  }

  /** Sends one request to `path` (`/v1/...`) and resolves to the parsed JSON answer. Undefined
   * and null query values are left out, booleans become true/false and arrays are joined with
   * commas. Use it for endpoints this class does not wrap (`/v1/tokens`, `/v1/backup`...). */
  async request(method, path, { query, body, timeout } = {}) {
    let url = this.baseUrl + path;
    const params = buildQuery(query || {});
    if (params) url += `?${params}`;
    const headers = this._headers();
    const init = { method, headers, signal: AbortSignal.timeout(timeout ?? this.timeout) };
    if (body !== undefined) {
      init.body = JSON.stringify(body);
      headers['Content-Type'] = 'application/json';
    }
    let resp;
    let raw;
    try {
      resp = await fetch(url, init);
      raw = await resp.text();
    } catch (e) {
      const cause = e?.cause?.code || e?.cause?.message || e?.message || String(e);
      throw new ConnectionFailed(`${method} ${url}: ${cause}`);
    }
    let parsed = null;
    if (raw) {
      try {
        parsed = JSON.parse(raw);
      } catch (e) {
        if (resp.ok) throw new TimetrailError(resp.status, 'invalid_response', `not JSON: ${raw.slice(0, 200)}`);
      }
    }
    if (!resp.ok) throw errorFromResponse(resp.status, parsed);
    return parsed;
  }

  _get(path, query, minPosition, timeoutMs) {
    const q = { ...query, min_position: minPosition, timeout_ms: timeoutMs };
    // the server may wait up to timeout_ms (default 5 s) for min_position: wait longer
    const wait = minPosition ? (timeoutMs ?? 5000) : 0;
    return this.request('GET', path, { query: q, timeout: Math.max(this.timeout, wait + 5000) });
  }

  // -- writing ----------------------------------------------------------------------------

  /** Appends `events` (see newEvent) to `stream`. */
  append(stream, events, { expectedRevision } = {}) {
    const body = { events: [...events] };
    if (expectedRevision !== undefined && expectedRevision !== null) body.expected_revision = expectedRevision;
    return this.request('POST', `/v1/streams/${seg(stream)}`, { body });
  }

  /** Appends to several streams atomically; `appends` are streamAppend objects. */
  transaction(appends) {
    return this.request('POST', '/v1/transactions', { body: { appends: [...appends] } });
  }

  /** Commits many transactions in order, stopping at the first that fails (which does not
   * reject: see `failed` in the answer). A batch refused as a whole rejects. */
  async transactionBatch(transactions) {
    const body = { transactions: transactions.map((t) => ({ appends: [...t] })) };
    try {
      return await this.request('POST', '/v1/transactions/batch', { body });
    } catch (e) {
      if (e instanceof TimetrailError && 'results' in e.body) return e.body;
      throw e;
    }
  }

  /** Restores the state at `toRevision` or `toTime` by appending a new `$put` (or `$delete`). */
  revert(stream, { toRevision, toTime, expectedRevision, actor, reason } = {}) {
    const body = {};
    if (toRevision !== undefined && toRevision !== null) body.to_revision = toRevision;
    if (toTime !== undefined && toTime !== null) body.to_time = formatTime(toTime);
    if (expectedRevision !== undefined && expectedRevision !== null) body.expected_revision = expectedRevision;
    if (actor !== undefined && actor !== null) body.actor = actor;
    if (reason !== undefined && reason !== null) body.reason = reason;
    return this.request('POST', `/v1/entities/${seg(stream)}/revert`, { body });
  }

  // -- reading ----------------------------------------------------------------------------

  /** One page of a stream: `{events, next}`; pass `next` as `fromRevision` for the next page.
   * Rejects with NotFound for a stream without events. */
  readStream(stream, { fromRevision, backward = false, limit, minPosition, timeoutMs } = {}) {
    return this._get(`/v1/streams/${seg(stream)}`,
      { from: fromRevision, direction: backward ? 'backward' : undefined, limit },
      minPosition, timeoutMs);
  }

  /** Every event of a stream from `fromRevision` on, reading page after page. */
  async *iterStream(stream, { fromRevision, backward = false, pageSize = 100, minPosition } = {}) {
    let cursor = fromRevision;
    for (;;) {
      const page = await this.readStream(stream, { fromRevision: cursor, backward, limit: pageSize, minPosition });
      yield* page.events;
      cursor = page.next;
      if (cursor === null || cursor === undefined) return;
    }
  }

  /** `{stream, exists, revision, position, deleted}` (also for a stream without events). */
  streamInfo(stream, { minPosition, timeoutMs } = {}) {
    return this._get(`/v1/streams/${seg(stream)}/info`, {}, minPosition, timeoutMs);
  }

  /** One page of the global log: `{events, next, head}`. */
  readLog({ fromPosition, limit, streamPrefix, types, minPosition, timeoutMs } = {}) {
    return this._get('/v1/log', { from: fromPosition, limit, stream_prefix: streamPrefix, types },
      minPosition, timeoutMs);
  }

  /** The global log from `fromPosition` up to the head as it was when each page was read. */
  async *iterLog({ fromPosition = 1, streamPrefix, types, pageSize = 1000, minPosition } = {}) {
    let pos = fromPosition;
    for (;;) {
      const page = await this.readLog({ fromPosition: pos, limit: pageSize, streamPrefix, types, minPosition });
      yield* page.events;
      pos = page.next;
      if (pos > page.head) return;
    }
  }

  /** The event with this id (NotFound if none). */
  getEvent(eventId, { minPosition, timeoutMs } = {}) {
    return this._get(`/v1/events/${seg(eventId)}`, {}, minPosition, timeoutMs);
  }

  // -- temporal queries -------------------------------------------------------------------

  /** The entity's state: the latest, or at one of `atRevision`, `atPosition`, `asOf` (system
   * time) or `validAt` (valid time, as known at `knownAt`). */
  entity(stream, { atRevision, atPosition, asOf, validAt, knownAt, minPosition, timeoutMs } = {}) {
    return this._get(`/v1/entities/${seg(stream)}`,
      { at_revision: atRevision, at_position: atPosition, as_of: optTime(asOf),
        valid_at: optTime(validAt), known_at: optTime(knownAt) },
      minPosition, timeoutMs);
  }

  /** One page of the intervals during which the value at JSON pointer `path` stayed the same;
   * pass `cursor` back for the next page (null at the end). */
  history(stream, path, { validTime = false, knownAt, limit, cursor, minPosition, timeoutMs } = {}) {
    return this._get(`/v1/entities/${seg(stream)}/history`,
      { path, valid_time: validTime ? true : undefined, known_at: optTime(knownAt), limit, cursor },
      minPosition, timeoutMs);
  }

  /** Every interval of history(), following the cursor. */
  async *iterHistory(stream, path, { validTime = false, knownAt, pageSize = 1000, minPosition } = {}) {
    let cursor;
    for (;;) {
      const page = await this.history(stream, path, { validTime, knownAt, limit: pageSize, cursor, minPosition });
      yield* page.intervals;
      cursor = page.cursor;
      if (cursor === null || cursor === undefined) return;
    }
  }

  /** The states at two points and the JSON Patch between them; with `events: true` also a page
   * of the events in between and a `cursor` for the next page. */
  diff(stream, { fromRevision, fromTime, toRevision, toTime, events = false, limit, cursor,
    minPosition, timeoutMs } = {}) {
    return this._get(`/v1/entities/${seg(stream)}/diff`,
      { from: fromRevision, from_time: optTime(fromTime), to: toRevision, to_time: optTime(toTime),
        events: events ? true : undefined, limit, cursor },
      minPosition, timeoutMs);
  }

  /** One page of events across streams, newest first: `{events, cursor}`. */
  activity({ actor, streamPrefix, types, since, until, limit, cursor, minPosition, timeoutMs } = {}) {
    return this._get('/v1/activity',
      { actor, stream_prefix: streamPrefix, type: types, since: optTime(since), until: optTime(until),
        limit, cursor },
      minPosition, timeoutMs);
  }

  /** Every event of activity() with these filters, following the cursor. */
  async *iterActivity({ pageSize = 100, ...filters } = {}) {
    let cursor;
    for (;;) {
      const page = await this.activity({ ...filters, limit: pageSize, cursor });
      yield* page.events;
      cursor = page.cursor;
      if (cursor === null || cursor === undefined) return;
    }
  }

  // -- integrity, consumers, health -------------------------------------------------------

  /** The head of the integrity chain: `{position, hash}`; keep it elsewhere. */
  integrityHead() {
    return this.request('GET', '/v1/integrity');
  }

  /** Recomputes the whole chain (admin scope when authentication is on). */
  verify() {
    return this.request('POST', '/v1/integrity/verify');
  }

  /** Stores `position` as the last one the named consumer has processed. */
  ack(consumer, position) {
    return this.request('POST', `/v1/consumers/${seg(consumer)}/ack`, { body: { position } });
  }

  /** `{name, position}` of a named consumer (NotFound if it never acknowledged). */
  consumer(consumer) {
    return this.request('GET', `/v1/consumers/${seg(consumer)}`);
  }

  /** `{status: "ok", position}`. */
  health() {
    return this.request('GET', '/healthz');
  }

  // -- subscriptions ----------------------------------------------------------------------

  /** Follows the global log over server-sent events (`GET /v1/subscribe`); see Subscription. */
  subscribe({ fromPosition, streamPrefix, types, consumer, reconnect = true, retryDelay = 200,
    maxRetryDelay = 5000, giveUpAfter = 60000, readTimeout = 60000 } = {}) {
    const query = buildQuery({ from: fromPosition, stream_prefix: streamPrefix, types, consumer });
    return new Subscription(this.baseUrl, `/v1/subscribe${query ? `?${query}` : ''}`, {
      headers: this._headers(), reconnect, retryDelay, maxRetryDelay, giveUpAfter, readTimeout,
    });
  }
}

/** An async iterable over the events of a subscription (made by Client#subscribe).
 *
 * Events come in position order. `position` is the position of the last event delivered (null
 * before the first). When the connection drops, the next connection sends `Last-Event-ID:
 * position` so the server resumes right after it; an event at or before `position` is never
 * delivered again. close() ends the iteration, also while it waits for events. */
export class Subscription {
  constructor(baseUrl, path, { headers, reconnect, retryDelay, maxRetryDelay, giveUpAfter, readTimeout }) {
    const url = new URL(baseUrl);
    this._https = url.protocol === 'https:';
    this._host = url.hostname.replace(/^\[|\]$/g, '');
    this._port = url.port ? Number(url.port) : (this._https ? 443 : 80);
    this._path = url.pathname.replace(/\/+$/, '') + path;
    this._headers = { ...headers, Accept: 'text/event-stream' };
    this.reconnect = reconnect;
    this.retryDelay = retryDelay;
    this.maxRetryDelay = maxRetryDelay;
    this.giveUpAfter = giveUpAfter;
    this.readTimeout = readTimeout;
    /** @type {number|null} */
    this.position = null;
    /** How many connections were opened (1 plus the reconnects). */
    this.connections = 0;
    /** Events the server sent again after a reconnect, which were not delivered twice. */
    this.duplicatesSkipped = 0;
    this._closed = false;
    this._abort = new AbortController();
    this._req = null;
    this._iterating = false;
  }

  get closed() {
    return this._closed;
  }

  /** Ends the subscription; an iteration waiting for events finishes. */
  close() {
    if (this._closed) return;
    this._closed = true;
    this._abort.abort();
    this._drop();
  }

  [Symbol.asyncIterator]() {
    if (this._iterating) throw new Error('a Subscription can be iterated only once at a time');
    this._iterating = true;
    return this._run();
  }

  async *_run() {
    let delay = this.retryDelay;
    let downSince = null;
    try {
      while (!this._closed) {
        let res;
        try {
          res = await this._connect();
        } catch (e) {
          if (this._closed) return;
          if (e instanceof TimetrailError && !(e instanceof ConnectionFailed)) throw e;
          const now = Date.now();
          if (downSince === null) downSince = now;
          const giveUp = this.giveUpAfter !== null && this.giveUpAfter !== undefined
            && now - downSince > this.giveUpAfter;
          if (!this.reconnect || giveUp) {
            throw e instanceof ConnectionFailed ? e : new ConnectionFailed(`subscribe ${this._path}: ${e?.code || e?.message || e}`);
          }
          await sleep(delay, this._abort.signal);
          delay = Math.min(delay * 2, this.maxRetryDelay);
          continue;
        }
        delay = this.retryDelay;
        downSince = null;
        try {
          for await (const event of parseEvents(res)) {
            const position = Number(event.position);
            if (this.position !== null && position <= this.position) {
              this.duplicatesSkipped += 1; // never deliver an event twice
              continue;
            }
            this.position = position;
            yield event;
            if (this._closed) return;
          }
        } catch (e) {
          if (e instanceof SyntaxError && !this._closed) throw e; // not JSON: not a timetrail server
          // otherwise the connection dropped: reconnect below
        } finally {
          this._drop();
        }
        if (!this.reconnect) return;
      }
    } finally {
      this._closed = true;
      this._drop();
    }
  }

  _connect() {
    return new Promise((resolve, reject) => {
      const headers = { ...this._headers };
      if (this.position !== null) headers['Last-Event-ID'] = String(this.position);
      const mod = this._https ? https : http;
      const req = mod.request({
        host: this._host, port: this._port, path: this._path, method: 'GET', headers,
      });
      this._req = req;
      req.setTimeout(this.readTimeout, () => req.destroy(new Error(`no data for ${this.readTimeout} ms`)));
      req.on('error', (e) => reject(new ConnectionFailed(`subscribe ${this._path}: ${e.code || e.message}`)));
      req.on('response', (res) => {
        if (res.statusCode === 200) {
          this.connections += 1;
          resolve(res);
          return;
        }
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('error', (e) => reject(new ConnectionFailed(`subscribe ${this._path}: ${e.message}`)));
        res.on('end', () => {
          let body = null;
          try {
            body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
          } catch {
            body = null;
          }
          if (res.statusCode === 503 && this.reconnect) {
            // shutting down or full: try again later
            reject(new ConnectionFailed(`subscribe ${this._path}: 503 ${body?.error ?? ''}`));
          } else {
            reject(errorFromResponse(res.statusCode, body));
          }
        });
      });
      if (this._closed) req.destroy();
      req.end();
    });
  }

  _drop() {
    const req = this._req;
    this._req = null;
    if (req) req.destroy();
  }
}

/** The events (`event: event` frames, parsed JSON) of a text/event-stream response. */
async function* parseEvents(res) {
  res.setEncoding('utf8');
  let buffer = '';
  let data = [];
  let kind = 'message';
  for await (const chunk of res) {
    buffer += chunk;
    let nl;
    while ((nl = buffer.indexOf('\n')) >= 0) {
      let line = buffer.slice(0, nl);
      buffer = buffer.slice(nl + 1);
      if (line.endsWith('\r')) line = line.slice(0, -1);
      if (line === '') {
        if (data.length > 0 && kind === 'event') yield JSON.parse(data.join('\n'));
        data = [];
        kind = 'message';
        continue;
      }
      if (line.startsWith(':')) continue; // ": subscribed", ": keepalive"
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? '' : line.slice(colon + 1);
      if (value.startsWith(' ')) value = value.slice(1);
      if (field === 'data') data.push(value);
      else if (field === 'event') kind = value;
    }
  }
}
