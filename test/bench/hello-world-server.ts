import http from 'node:http';
import Koa from 'koa';

// The baseline of the API throughput benchmark: the smallest Koa app, in its own process like
// the service, answering GET /healthz with a small JSON body.
const app = new Koa();
app.use((ctx) => {
  ctx.body = { status: 'ok' };
});
const server = http.createServer(app.callback());
server.keepAliveTimeout = 65_000;
server.listen(Number(process.env.PORT ?? 0), process.env.HOST ?? '127.0.0.1');
process.once('SIGTERM', () => server.close(() => process.exit(0)));
