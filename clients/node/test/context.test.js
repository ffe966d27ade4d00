// Tests of context.js: annotate's rules, then the Express example (examples/express-app.js) and
// node-postgres against a real PostgreSQL and a real `timetrail serve --capture`, reading the
// captured changes back with the client.
//
// The second part needs TIMETRAIL_BIN (the timetrail binary) and a PostgreSQL with
// wal_level=logical in TIMETRAIL_PG_URL; tests/support/with_postgres.sh starts one:
//   tests/support/with_postgres.sh env TIMETRAIL_BIN=build/relwithdebinfo/src/cli/timetrail \
//     node --test clients/node/test/context.test.js
// (CTest: node_pg_context). The packages come from `npm ci` (scripts/install-npm-deps.sh).

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

import { Client, NotFound } from '../index.js';
import {
  annotate, contextMiddleware, currentContext, encodeContext, instrumentPg, withContext,
} from '../context.js';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..', '..');

/** The JSON of the trailing comment annotate added, parsed. */
function commentContext(sql) {
  const m = /\/\*timetrail ([^/]*)\*\/[\s;]*$/.exec(sql);
  assert.ok(m, `no trailing context comment in ${JSON.stringify(sql)}`);
  return JSON.parse(m[1]);
}

describe('annotate', () => {
  const ctx = { actor: 'alice', reason: 'refund' };

  it('leaves statements alone outside a context', () => {
    assert.equal(currentContext(), undefined);
    assert.equal(annotate('UPDATE t SET a = 1'), 'UPDATE t SET a = 1');
  });

  it('appends the active context to writes', () => {
    withContext(ctx, () => {
      assert.equal(annotate('UPDATE t SET a = 1'),
        'UPDATE t SET a = 1 /*timetrail {"actor":"alice","reason":"refund"}*/');
    });
    for (const sql of ['INSERT INTO t VALUES (1)', 'update t set a = 1', 'DELETE FROM t',
      'MERGE INTO t USING s ON true WHEN MATCHED THEN DELETE', 'COPY t FROM STDIN', 'TRUNCATE t',
      'WITH x AS (DELETE FROM t RETURNING *) SELECT * FROM x', '/* lead */ UPDATE t SET a = 1',
      '-- why\n  /* nested /* comment */ */ delete from t', 'PREPARE p AS UPDATE t SET a = 1',
      'CALL do_things()', 'VALUES (1)']) {
      assert.deepEqual(commentContext(annotate(sql, ctx)), ctx, sql);
    }
  });

  it('leaves statements that cannot write alone', () => {
    for (const sql of ['SELECT 1', '  select * from t', '/* x */ -- y\nSELECT 1', 'SHOW work_mem',
      "SET search_path = public", 'RESET ALL', 'BEGIN', 'START TRANSACTION', 'COMMIT', 'ROLLBACK',
      'SAVEPOINT s', 'RELEASE s', "prepare  transaction 'x'", '', '   ', '/* only a comment */']) {
      assert.equal(annotate(sql, ctx), sql, sql);
    }
  });

  it("encodes '/', '%', '?' and '$' so the comment cannot close early or look like a placeholder", () => {
    const tricky = { actor: 'a/b%c?d$1 */ "q" \'s\' ü 日本 \\', reason: '%s %(x)s ? $2 /*' };
    const sql = annotate('UPDATE t SET a = $1', tricky);
    const comment = sql.slice('UPDATE t SET a = $1'.length);
    assert.doesNotMatch(comment.slice(' /*timetrail '.length, -2), /[/%?$]/);
    assert.deepEqual(commentContext(sql), tricky);
    assert.equal(encodeContext({ a: '/' }), '{"a":"\\u002f"}');
  });

  it('keeps an existing trailing context comment', () => {
    for (const sql of ['UPDATE t SET a = 1 /*timetrail {"actor":"bob"}*/',
      'UPDATE t SET a = 1 /*timetrail {"actor":"bob"}*/;\n']) {
      assert.equal(annotate(sql, ctx), sql);
    }
    // A context comment in the middle is not the statement's: this one gets its own.
    const inner = 'UPDATE t SET a = 1 /*timetrail {"actor":"bob"}*/ WHERE b = 2';
    assert.deepEqual(commentContext(annotate(inner, ctx)), ctx);
  });

  it('puts the comment before trailing semicolons and after a trailing line comment', () => {
    assert.equal(annotate('DELETE FROM t; \n', { actor: 'x' }), 'DELETE FROM t /*timetrail {"actor":"x"}*/; \n');
    assert.equal(annotate('DELETE FROM t -- all of it', { actor: 'x' }),
      'DELETE FROM t -- all of it\n/*timetrail {"actor":"x"}*/');
  });

  it('drops undefined members and adds nothing for an empty context', () => {
    assert.equal(annotate('DELETE FROM t', {}), 'DELETE FROM t');
    assert.equal(annotate('DELETE FROM t', { actor: undefined }), 'DELETE FROM t');
    assert.deepEqual(commentContext(annotate('DELETE FROM t', { actor: 'x', reason: undefined })), { actor: 'x' });
  });

  it('rejects bad input with a clear error', () => {
    assert.throws(() => annotate(42), /statement must be a string/);
    assert.throws(() => withContext('alice', () => {}), /context must be an object/);
    assert.throws(() => withContext({}, null), /fn must be a function/);
    assert.throws(() => instrumentPg({}), /expected a node-postgres Pool or Client/);
    assert.throws(() => contextMiddleware('actor'), /fromRequest must be a function/);
  });
});

describe('withContext and contextMiddleware', () => {
  it('merges nested contexts and restores the outer one', () => {
    withContext({ actor: 'a', reason: 'r' }, () => {
      withContext({ actor: 'b' }, () => assert.deepEqual(currentContext(), { actor: 'b', reason: 'r' }));
      assert.deepEqual(currentContext(), { actor: 'a', reason: 'r' });
    });
    assert.equal(currentContext(), undefined);
  });

  it('keeps concurrent async work apart', async () => {
    const seen = await Promise.all(['a', 'b', 'c'].map((actor, i) => withContext({ actor }, async () => {
      await new Promise((resolve) => setTimeout(resolve, 30 - 10 * i));
      await null;
      return currentContext().actor;
    })));
    assert.deepEqual(seen, ['a', 'b', 'c']);
  });

  it('runs the request in a context with its request id and fromRequest members', async () => {
    const headers = {};
    const res = { setHeader: (k, v) => { headers[k.toLowerCase()] = v; } };
    const run = (mw, req) => new Promise((resolve, reject) => mw(req, res, (err) => (err ? reject(err) : resolve(currentContext()))));
    const mw = contextMiddleware((req) => ({ actor: req.headers['x-actor'] }));
    assert.deepEqual(await run(mw, { headers: { 'x-request-id': 'r-1', 'x-actor': 'ann' } }),
      { request_id: 'r-1', actor: 'ann' });
    assert.equal(headers['x-request-id'], 'r-1');
    const generated = await run(mw, { headers: {} });
    assert.match(generated.request_id, /^[0-9a-f-]{36}$/);
    assert.equal(headers['x-request-id'], generated.request_id);
    assert.deepEqual(await run(contextMiddleware(async () => ({ actor: 'async' })), { headers: { 'x-request-id': 'r-2' } }),
      { request_id: 'r-2', actor: 'async' });
    await assert.rejects(run(contextMiddleware(() => { throw new Error('no session'); }), { headers: {} }), /no session/);
  });
});

// ---------------------------------------------------------------------------------------------
// Against PostgreSQL and the capture.

const BIN = process.env.TIMETRAIL_BIN || '';
const PG_URL = process.env.TIMETRAIL_PG_URL || '';

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Spawns a process and resolves with it and the URL of its first 'listening on URL' line. */
function spawnListening(cmd, args, options) {
  const proc = spawn(cmd, args, { ...options, stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let out = '';
    const onData = (chunk) => {
      out += chunk;
      const m = /^listening on (\S+)\n/m.exec(out);
      if (m) {
        proc.stdout.off('data', onData);
        proc.stdout.resume(); // keep draining so the process never blocks on a full pipe
        resolve({ proc, url: m[1] });
      }
    };
    proc.stdout.setEncoding('utf8');
    proc.stdout.on('data', onData);
    proc.on('exit', (code) => reject(new Error(`${cmd} ${args.join(' ')} exited (${code}): ${out}`)));
  });
}

async function stop(proc) {
  if (!proc || proc.exitCode !== null) return;
  const exited = new Promise((resolve) => proc.on('exit', resolve));
  proc.kill('SIGTERM');
  await exited;
}

describe('node-postgres and the Express example with the capture', { timeout: 240000 }, () => {
  let pg; let Cursor; let pool; let tt; let app; let server; let dataDir;

  /** The stream's events once it has at least n (the capture runs behind the source). */
  async function events(table, key, n) {
    const stream = `public.${table}/${key}`;
    const deadline = Date.now() + 60000;
    for (;;) {
      let got = [];
      try {
        got = (await tt.readStream(stream, { limit: 1000 })).events;
      } catch (err) {
        if (!(err instanceof NotFound)) throw err;
      }
      if (got.length >= n) return got;
      if (Date.now() > deadline) throw new Error(`${stream}: ${got.length} events after 60 s, want ${n}`);
      await sleep(50);
    }
  }
  const last = async (table, key, n) => (await events(table, key, n))[n - 1];

  async function call(method, path, { headers = {}, body } = {}) {
    const res = await fetch(`${app.url}${path}`, {
      method,
      headers: { 'Content-Type': 'application/json', ...headers },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const answer = await res.json();
    assert.ok(res.ok, `${method} ${path}: ${res.status} ${JSON.stringify(answer)}`);
    return { answer, requestId: res.headers.get('x-request-id') };
  }

  before(async () => {
    assert.ok(BIN, 'set TIMETRAIL_BIN to the timetrail binary');
    assert.ok(PG_URL, 'set TIMETRAIL_PG_URL (tests/support/with_postgres.sh does)');
    pg = (await import('pg')).default;
    Cursor = (await import('pg-cursor')).default;
    const { createSchema } = await import('../examples/express-app.js');

    const setup = new pg.Client({ connectionString: PG_URL });
    await setup.connect();
    await setup.query(readFileSync(join(root, 'sql', 'timetrail_context.sql'), 'utf8'));
    await createSchema(setup);
    await setup.query('CREATE PUBLICATION timetrail FOR ALL TABLES');
    const { rows: [{ n }] } = await setup.query("SELECT timetrail.track_context_for_publication('timetrail') AS n");
    assert.equal(n, 2);

    dataDir = mkdtempSync(join(tmpdir(), 'timetrail-node-context-'));
    server = await spawnListening(BIN, ['serve', '--data', dataDir, '--listen', '127.0.0.1:0',
      '--auth', 'off', '--capture', PG_URL]);
    tt = new Client(server.url);
    // Changes are recorded from the moment the capture's slot exists.
    for (const deadline = Date.now() + 60000; ;) {
      const { rowCount } = await setup.query("SELECT 1 FROM pg_replication_slots WHERE slot_name = 'timetrail'");
      if (rowCount) break;
      if (Date.now() > deadline) throw new Error('the capture made no replication slot in 60 s');
      await sleep(100);
    }
    await setup.end();

    pool = instrumentPg(new pg.Pool({ connectionString: PG_URL, max: 3 }));
    // Outside any context: these inserts carry no actor.
    await pool.query("INSERT INTO orders (id, status) SELECT g, 'new' FROM generate_series(1, 80) g");

    app = await spawnListening(process.execPath, [join(here, '..', 'examples', 'express-app.js')],
      { env: { ...process.env, DATABASE_URL: PG_URL, PORT: '0' } });
  });

  after(async () => {
    await stop(app?.proc);
    await pool?.end();
    await stop(server?.proc);
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  it('records no actor for changes made outside a context', async () => {
    const insert = await last('orders', 1, 1);
    assert.equal(insert.type, '$put');
    assert.equal(insert.metadata.actor, undefined);
    assert.equal(insert.metadata.request_id, undefined);
    assert.equal(insert.metadata.source.operation, 'insert');
  });

  it('attributes a single-statement update to the authenticated user and the request', async () => {
    await call('PATCH', '/orders/1', {
      headers: { Authorization: 'Bearer alice-token', 'X-Request-Id': 'req-1', 'X-Change-Reason': 'customer called' },
      body: { status: 'paid' },
    });
    const e = await last('orders', 1, 2);
    assert.deepEqual(e.data, { status: 'paid' });
    assert.equal(e.metadata.actor, 'alice');
    assert.equal(e.metadata.reason, 'customer called');
    assert.equal(e.metadata.request_id, 'req-1');
  });

  it('records the request id the middleware generated and sent back', async () => {
    const { requestId } = await call('PATCH', '/orders/2', { headers: { 'X-Actor': 'gen' }, body: { status: 'shipped' } });
    assert.match(requestId, /^[0-9a-f-]{36}$/);
    const e = await last('orders', 2, 2);
    assert.equal(e.metadata.actor, 'gen');
    assert.equal(e.metadata.request_id, requestId);
  });

  it('records no actor for a request without one', async () => {
    await call('PATCH', '/orders/3', { headers: { 'X-Request-Id': 'anon-1' }, body: { status: 'seen' } });
    const e = await last('orders', 3, 2);
    assert.equal(e.metadata.actor, undefined);
    assert.equal(e.metadata.request_id, 'anon-1');
  });

  it('keeps concurrent requests apart (more requests than pooled connections)', async () => {
    const keys = Array.from({ length: 30 }, (_, i) => 11 + i);
    await Promise.all(keys.map((k) => call('PATCH', `/orders/${k}`, {
      headers: { 'X-Actor': `user-${k}`, 'X-Request-Id': `req-${k}` }, body: { status: `s-${k}` },
    })));
    for (const k of keys) {
      const e = await last('orders', k, 2);
      assert.deepEqual(e.data, { status: `s-${k}` });
      assert.equal(e.metadata.actor, `user-${k}`, `order ${k}`);
      assert.equal(e.metadata.request_id, `req-${k}`, `order ${k}`);
    }
  });

  it('attributes every row of a bulk update, in one transaction', async () => {
    await call('POST', '/orders/bulk-status', {
      headers: { 'X-Actor': 'bob', 'X-Request-Id': 'bulk-1' }, body: { ids: [4, 5, 6], status: 'archived' },
    });
    const changes = await Promise.all([4, 5, 6].map((k) => last('orders', k, 2)));
    for (const e of changes) {
      assert.equal(e.metadata.actor, 'bob');
      assert.equal(e.metadata.request_id, 'bulk-1');
      assert.equal(e.tx, changes[0].tx);
    }
  });

  it('attributes both tables of a transaction', async () => {
    const { answer } = await call('POST', '/orders/7/refund', {
      headers: { 'X-Actor': 'carol', 'X-Request-Id': 'refund-1' }, body: { amount: '12.50' },
    });
    const order = await last('orders', 7, 2);
    const refund = await last('refunds', answer.refund, 1);
    assert.deepEqual(order.data, { status: 'refunded' });
    assert.equal(refund.data.amount, 12.5);
    for (const e of [order, refund]) {
      assert.equal(e.metadata.actor, 'carol');
      assert.equal(e.metadata.request_id, 'refund-1');
    }
    assert.equal(order.tx, refund.tx);
  });

  it('round-trips an actor with / % $ */ quotes and backslashes through the HTTP header', async () => {
    const actor = 'dev/ops%20$1?x */ "q" \'s\' \\ /*timetrail {"actor":"forged"}*/';
    await call('PATCH', '/orders/8', { headers: { 'X-Actor': actor }, body: { status: 'odd' } });
    assert.equal((await last('orders', 8, 2)).metadata.actor, actor);
  });

  it('round-trips non-ASCII and every special character through node-postgres', async () => {
    const actor = 'Zoë 日本 😀 a/b%c$d?e*/f "dq" \'sq\' \\ \u2028 \n\t end';
    const reason = '%s %(name)s ? $1 /* */ \u0000-free';
    await withContext({ actor, reason }, () => pool.query('UPDATE orders SET status = $1 WHERE id = $2', ['intl', 9]));
    const e = await last('orders', 9, 2);
    assert.equal(e.metadata.actor, actor);
    assert.equal(e.metadata.reason, reason);
  });

  it('attributes a named prepared statement and does not prepare the annotated one', async () => {
    await call('PUT', '/orders/10/note', { headers: { 'X-Actor': 'dave' }, body: { note: 'first' } });
    await call('PUT', '/orders/10/note', { headers: { 'X-Actor': 'erin' }, body: { note: 'second' } });
    const [, first, second] = await events('orders', 10, 3);
    assert.deepEqual([first.data, first.metadata.actor], [{ note: 'first' }, 'dave']);
    assert.deepEqual([second.data, second.metadata.actor], [{ note: 'second' }, 'erin']);

    const client = await pool.connect();
    try {
      const named = { name: 'np-note', text: 'UPDATE orders SET note = $1 WHERE id = $2' };
      const prepared = async () => (await client.query(
        "SELECT count(*)::int AS n FROM pg_prepared_statements WHERE name = 'np-note'")).rows[0].n;
      await withContext({ actor: 'frank' }, () => client.query({ ...named, values: ['in context', 41] }));
      assert.equal(await prepared(), 0, 'an annotated statement must not be prepared under its name');
      await client.query({ ...named, values: ['no context', 42] });
      assert.equal(await prepared(), 1, 'outside a context the named statement is prepared as usual');
      await withContext({ actor: 'grace' }, () => client.query({ ...named, values: ['again', 43] }));
    } finally {
      client.release();
    }
    assert.equal((await last('orders', 41, 2)).metadata.actor, 'frank');
    assert.equal((await last('orders', 42, 2)).metadata.actor, undefined);
    const again = await last('orders', 43, 2);
    assert.deepEqual([again.data, again.metadata.actor], [{ note: 'again' }, 'grace']);
  });

  it('annotates every query shape: callbacks, config objects, Submittables (pg-cursor, pg.Query)', async () => {
    await withContext({ actor: 'cb' }, () => new Promise((resolve, reject) => {
      pool.query('UPDATE orders SET status = $1 WHERE id = $2', ['cb', 44], (err) => (err ? reject(err) : resolve()));
    }));
    await withContext({ actor: 'cb-novalues' }, () => new Promise((resolve, reject) => {
      pool.query("UPDATE orders SET status = 'cb2' WHERE id = 45", (err) => (err ? reject(err) : resolve()));
    }));
    await withContext({ actor: 'config' }, () => pool.query({ text: 'UPDATE orders SET status = $1 WHERE id = $2', values: ['cfg', 46] }));
    const client = await pool.connect();
    try {
      const rows = await withContext({ actor: 'cursor' }, async () => {
        const cursor = client.query(new Cursor('UPDATE orders SET status = $1 WHERE id = $2 RETURNING id', ['cur', 47]));
        const got = await cursor.read(10);
        await cursor.close();
        return got;
      });
      assert.deepEqual(rows, [{ id: 47 }]);
      await withContext({ actor: 'submittable' }, () => new Promise((resolve, reject) => {
        client.query(new pg.Query('UPDATE orders SET status = $1 WHERE id = $2', ['q', 48], (err) => (err ? reject(err) : resolve())));
      }));
      await withContext({ actor: 'client-cb' }, () => new Promise((resolve, reject) => {
        client.query('UPDATE orders SET status = $1 WHERE id = $2', ['ccb', 49], (err) => (err ? reject(err) : resolve()));
      }));
    } finally {
      client.release();
    }
    const want = { 44: 'cb', 45: 'cb-novalues', 46: 'config', 47: 'cursor', 48: 'submittable', 49: 'client-cb' };
    for (const [k, actor] of Object.entries(want)) {
      assert.equal((await last('orders', Number(k), 2)).metadata.actor, actor, `order ${k}`);
    }
  });

  it('keeps contexts apart on a saturated pool (pool.query waits for a freed client)', async () => {
    const keys = Array.from({ length: 12 }, (_, i) => 60 + i);
    await Promise.all([
      ...keys.map((k) => withContext({ actor: `pool-${k}` }, async () => {
        await pool.query('SELECT pg_sleep(0.01)');
        await pool.query('UPDATE orders SET status = $1 WHERE id = $2', [`p-${k}`, k]);
      })),
      // Queued behind them, outside any context: it gets a client some context's query freed.
      pool.query("UPDATE orders SET status = 'none' WHERE id = 72"),
    ]);
    for (const k of keys) assert.equal((await last('orders', k, 2)).metadata.actor, `pool-${k}`, `order ${k}`);
    assert.equal((await last('orders', 72, 2)).metadata.actor, undefined);
  });

  it('gives a queued query without a context none, whatever context freed its client', async () => {
    // A pool's callbacks run in the context its connections were opened in: open them in one.
    const own = instrumentPg(new pg.Pool({ connectionString: PG_URL, max: 2 }));
    try {
      const busy = () => own.query('SELECT pg_sleep(0.05)');
      await withContext({ actor: 'opener' }, () => Promise.all([busy(), busy()]));
      await withContext({ actor: 'busy' }, () => Promise.all([
        busy(), busy(),
        withContext({ actor: 'queued' }, () => own.query("UPDATE orders SET status = 'q' WHERE id = 74")),
      ]));
      await Promise.all([
        withContext({ actor: 'busy' }, () => Promise.all([busy(), busy()])),
        own.query("UPDATE orders SET status = 'none' WHERE id = 75"), // waits for a freed client
      ]);
    } finally {
      await own.end();
    }
    assert.equal((await last('orders', 74, 2)).metadata.actor, 'queued');
    assert.equal((await last('orders', 75, 2)).metadata.actor, undefined);
  });

  it('lets timetrail.set_context win over comments in its transaction', async () => {
    const client = await pool.connect();
    try {
      await withContext({ actor: 'comment' }, async () => {
        await client.query('BEGIN');
        await client.query(`SELECT timetrail.set_context('{"actor": "explicit"}')`);
        await client.query("UPDATE orders SET status = 'x' WHERE id = 73");
        await client.query('COMMIT');
      });
    } finally {
      client.release();
    }
    assert.equal((await last('orders', 73, 2)).metadata.actor, 'explicit');
  });
});
