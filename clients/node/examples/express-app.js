// An Express app whose PostgreSQL changes carry who made them and why, for `timetrail capture`.
// Every request runs in a context (actor, reason, request_id); the instrumented node-postgres
// pool ends each write statement with a /*timetrail {...}*/ comment that the source database's
// statement trigger (sql/timetrail_context.sql) passes to the capture.
//
//   cd clients/node && npm ci
//   DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres PORT=3000 node examples/express-app.js
//   curl -X PATCH localhost:3000/orders/1 -H 'Authorization: Bearer alice-token' \
//        -H 'X-Change-Reason: customer called' -H 'Content-Type: application/json' -d '{"status":"paid"}'
//
// Tables it uses (createSchema makes them): orders (id, status, note) and refunds.

import { pathToFileURL } from 'node:url';

import express from 'express';
import pg from 'pg';

import { contextMiddleware, instrumentPg } from '../context.js';

export const SCHEMA = `
CREATE TABLE IF NOT EXISTS orders (id int PRIMARY KEY, status text NOT NULL, note text);
CREATE TABLE IF NOT EXISTS refunds (id serial PRIMARY KEY, order_id int NOT NULL REFERENCES orders,
                                    amount numeric NOT NULL);`;

/** The tables, and the context trigger on them (sql/timetrail_context.sql must be installed). */
export async function createSchema(pool) {
  await pool.query(SCHEMA);
  await pool.query("SELECT timetrail.track_context('orders'), timetrail.track_context('refunds')");
}

/** An authentication stub: a bearer token names a user (a real app checks a session or a JWT). */
function authenticate(users) {
  return (req, res, next) => {
    const token = /^Bearer (.+)$/.exec(req.get('Authorization') ?? '')?.[1];
    if (token !== undefined) {
      req.user = users[token];
      if (!req.user) return res.status(401).json({ error: 'unknown token' });
    }
    return next();
  };
}

const asyncRoute = (fn) => (req, res, next) => Promise.resolve(fn(req, res)).catch(next);

function intParam(value, what) {
  const n = Number(value);
  if (!Number.isSafeInteger(n)) {
    const err = new Error(`${what} must be an integer, got ${JSON.stringify(value)}`);
    err.status = 400;
    throw err;
  }
  return n;
}

/**
 * The app over an instrumented pool. `users` maps bearer tokens to `{ name }`; without a token
 * the actor is the X-Actor header (handy for tools and tests), and requests with neither have
 * no actor.
 */
export function createApp(pool, { users = { 'alice-token': { name: 'alice' } } } = {}) {
  instrumentPg(pool);
  const app = express();
  app.use(express.json());
  app.use(authenticate(users));
  // After the body parser: in some versions its callbacks leave the request's context.
  app.use(contextMiddleware((req) => ({
    actor: req.user?.name ?? req.get('X-Actor'),
    reason: req.get('X-Change-Reason'),
  })));

  app.get('/orders/:id', asyncRoute(async (req, res) => {
    const { rows } = await pool.query('SELECT * FROM orders WHERE id = $1', [intParam(req.params.id, 'id')]);
    if (rows.length === 0) return res.status(404).json({ error: 'no such order' });
    return res.json(rows[0]);
  }));

  // One statement in an implicit transaction.
  app.patch('/orders/:id', asyncRoute(async (req, res) => {
    const { rowCount } = await pool.query('UPDATE orders SET status = $1 WHERE id = $2',
      [String(req.body?.status ?? ''), intParam(req.params.id, 'id')]);
    res.status(rowCount ? 200 : 404).json({ updated: rowCount });
  }));

  // A named prepared statement: while a context is active it is sent unnamed, with its comment.
  app.put('/orders/:id/note', asyncRoute(async (req, res) => {
    const { rowCount } = await pool.query({
      name: 'set-order-note',
      text: 'UPDATE orders SET note = $1 WHERE id = $2',
      values: [String(req.body?.note ?? ''), intParam(req.params.id, 'id')],
    });
    res.status(rowCount ? 200 : 404).json({ updated: rowCount });
  }));

  // Many rows in one statement.
  app.post('/orders/bulk-status', asyncRoute(async (req, res) => {
    const ids = Array.isArray(req.body?.ids) ? req.body.ids.map((id) => intParam(id, 'ids[]')) : [];
    const { rowCount } = await pool.query('UPDATE orders SET status = $1 WHERE id = ANY($2::int[])',
      [String(req.body?.status ?? ''), ids]);
    res.json({ updated: rowCount });
  }));

  // A transaction on a client of its own: the refund and the order's new status commit together.
  app.post('/orders/:id/refund', asyncRoute(async (req, res) => {
    const id = intParam(req.params.id, 'id');
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      const { rowCount } = await client.query("UPDATE orders SET status = 'refunded' WHERE id = $1", [id]);
      if (rowCount === 0) {
        await client.query('ROLLBACK');
        return res.status(404).json({ error: 'no such order' });
      }
      const { rows } = await client.query(
        'INSERT INTO refunds (order_id, amount) VALUES ($1, $2) RETURNING id', [id, String(req.body?.amount ?? 0)]);
      await client.query('COMMIT');
      return res.status(201).json({ refund: rows[0].id });
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {});
      throw err;
    } finally {
      client.release();
    }
  }));

  app.use((err, req, res, next) => {
    if (res.headersSent) return next(err);
    return res.status(err.status ?? 500).json({ error: err.message });
  });
  return app;
}

async function main() {
  const url = process.env.DATABASE_URL;
  if (!url) {
    console.error('express-app: set DATABASE_URL (postgresql://user@host:port/db)');
    process.exit(2);
  }
  const pool = new pg.Pool({ connectionString: url });
  await createSchema(pool);
  const server = createApp(pool).listen(Number(process.env.PORT ?? 3000), '127.0.0.1', () => {
    console.log(`listening on http://127.0.0.1:${server.address().port}`);
  });
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) main();
