import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type Koa from 'koa';

export interface Listening {
  url: string;
  close(): Promise<void>;
}

/** Serves a Koa app on a free loopback port for the duration of a test. */
export function listen(app: Koa): Promise<Listening> {
  return serveOnLoopback(http.createServer(app.callback()));
}

/** Starts `server` on a free 127.0.0.1 port; `close()` drops open connections, then stops it. */
export async function serveOnLoopback(server: http.Server): Promise<Listening> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((error) => (error ? reject(error) : resolve()));
      }),
  };
}

/** A proxied request's headers to send on with fetch: the single-valued ones, minus host and content-length (fetch sets those). */
export function forwardableHeaders(headers: http.IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) if (typeof value === 'string' && name !== 'host' && name !== 'content-length') out[name] = value;
  return out;
}
