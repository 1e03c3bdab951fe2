import http from 'node:http';
import Koa from 'koa';
import pg from 'pg';

// The baselines of the API throughput benchmark: the smallest Koa app, in its own process like
// the service, answering GET /healthz with a small JSON body; and, with DATABASE_URL, GET
// /round-trips/:n making n sequential `SELECT 1` round trips to PostgreSQL on one pooled
// connection (pool of 10, as the service's default) — what n round trips cost on this machine
// before any of the service's own work.
const pool = process.env.DATABASE_URL ? new pg.Pool({ connectionString: process.env.DATABASE_URL, max: 10 }) : undefined;
const app = new Koa();
app.use(async (ctx) => {
  const trips = /^\/round-trips\/(\d{1,2})$/.exec(ctx.path);
  if (trips && pool) {
    const client = await pool.connect();
    try {
      for (let i = 0; i < Number(trips[1]); i += 1) await client.query('SELECT 1');
    } finally {
      client.release();
    }
  }
  ctx.body = { status: 'ok' };
});
const server = http.createServer(app.callback());
server.keepAliveTimeout = 65_000;
server.listen(Number(process.env.PORT ?? 0), process.env.HOST ?? '127.0.0.1');
process.once('SIGTERM', () => server.close(() => void pool?.end().finally(() => process.exit(0))));
