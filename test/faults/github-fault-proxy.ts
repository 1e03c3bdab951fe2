import http from 'node:http';
import { forwardableHeaders, serveOnLoopback } from '../support/http.ts';

export type GithubFault =
  | { kind: 'bad-gateway' }
  | { kind: 'secondary-rate-limit'; retryAfterSeconds: number }
  | { kind: 'slow'; delayMs: number }
  /** Forwarded (so GitHub did it), but the answer is lost: the client sees a 502 and retries. */
  | { kind: 'lost-response' };

export interface FaultProxy {
  url: string;
  /** Every request that reached the proxy, with when it arrived and what it was answered. */
  calls: { method: string; path: string; at: number; status: number }[];
  /** Injects `fault` on the next `times` requests whose method and path match. */
  inject(method: string, pathPattern: RegExp, fault: GithubFault, times?: number): void;
  close(): Promise<void>;
}

/** Faults GitHub shows in production, injected in front of the GitHub double. */
export async function startGithubFaultProxy(targetUrl: string): Promise<FaultProxy> {
  const rules: { method: string; pattern: RegExp; fault: GithubFault; times: number }[] = [];
  const calls: FaultProxy['calls'] = [];
  const server = http.createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (c: Buffer) => chunks.push(c));
    request.on('end', () => {
      void (async () => {
        const method = request.method ?? 'GET';
        const url = new URL(request.url ?? '/', 'http://proxy');
        const call = { method, path: url.pathname, at: Date.now(), status: 0 };
        calls.push(call);
        const answer = (status: number, body: unknown, headers: Record<string, string> = {}) => {
          call.status = status;
          response.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers });
          response.end(JSON.stringify(body));
        };
        const rule = rules.find((r) => r.times > 0 && r.method === method && r.pattern.test(url.pathname));
        if (rule) rule.times -= 1;
        const fault = rule?.fault;
        if (fault?.kind === 'bad-gateway') return answer(502, { message: 'Server Error' });
        if (fault?.kind === 'secondary-rate-limit') {
          return answer(
            403,
            { message: 'You have exceeded a secondary rate limit. Please wait a few minutes before you try again.', documentation_url: 'https://docs.github.com/rest/overview/rate-limits-for-the-rest-api' },
            { 'retry-after': String(fault.retryAfterSeconds), 'x-ratelimit-remaining': '4000', 'x-ratelimit-limit': '5000' },
          );
        }
        if (fault?.kind === 'slow') await new Promise((resolve) => setTimeout(resolve, fault.delayMs));
        const headers = forwardableHeaders(request.headers);
        const raw = Buffer.concat(chunks);
        const forwarded = await fetch(`${targetUrl}${url.pathname}${url.search}`, { method, headers, ...(raw.length ? { body: raw } : {}) });
        const text = await forwarded.text();
        if (fault?.kind === 'lost-response') return answer(502, { message: 'Server Error' });
        call.status = forwarded.status;
        const out: Record<string, string> = { 'content-type': forwarded.headers.get('content-type') ?? 'application/json' };
        for (const name of ['x-ratelimit-remaining', 'x-ratelimit-limit']) {
          const value = forwarded.headers.get(name);
          if (value) out[name] = value;
        }
        response.writeHead(forwarded.status, out);
        response.end(text);
      })().catch((error: unknown) => {
        response.writeHead(500, { 'content-type': 'application/json' });
        response.end(JSON.stringify({ message: String(error) }));
      });
    });
  });
  const listening = await serveOnLoopback(server);
  return {
    url: listening.url,
    calls,
    inject: (method, pathPattern, fault, times = 1) => rules.push({ method, pattern: pathPattern, fault, times }),
    close: listening.close,
  };
}
