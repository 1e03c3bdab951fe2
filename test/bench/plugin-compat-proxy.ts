import { createHash } from 'node:crypto';
import http from 'node:http';
import { forwardableHeaders, serveOnLoopback } from '../support/http.ts';

/**
 * Sits in front of the GitHub double so that octokit-plugin-create-pull-request can run
 * against the same repository as our driver. The plugin needs three things the double does not
 * serve: `GET /repos/{owner}/{repo}` (permissions, default branch), the GraphQL lookup of an
 * open PR for the head branch, and `POST /git/blobs` (one per file). The proxy answers those
 * itself and, for trees that name blobs by sha, puts the stored content inline before
 * forwarding, so the double builds the same tree; it also fills `commit.tree` into the double's
 * commit list, which GitHub includes and the plugin reads, and passes `owner:branch` heads as the
 * branch name. Every call the plugin makes is counted here.
 */
export interface CountingProxy {
  url: string;
  calls: { method: string; path: string }[];
  close(): Promise<void>;
}

export async function startPluginCompatProxy(targetUrl: string): Promise<CountingProxy> {
  const blobs = new Map<string, string>();
  const calls: { method: string; path: string }[] = [];
  const server = http.createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (c: Buffer) => chunks.push(c));
    request.on('end', () => {
      void (async () => {
        const method = request.method ?? 'GET';
        const url = new URL(request.url ?? '/', 'http://proxy');
        calls.push({ method, path: url.pathname });
        const raw = Buffer.concat(chunks).toString('utf8');
        const json = (status: number, body: unknown) => {
          response.writeHead(status, { 'content-type': 'application/json' });
          response.end(JSON.stringify(body));
        };
        if (method === 'GET' && /^\/repos\/[^/]+\/[^/]+$/.test(url.pathname)) {
          return json(200, { default_branch: 'main', permissions: { admin: false, push: true, pull: true } });
        }
        if (method === 'POST' && url.pathname === '/graphql') {
          return json(200, { data: { repository: { ref: null } } });
        }
        if (method === 'POST' && /\/git\/blobs$/.test(url.pathname)) {
          const { content, encoding } = JSON.parse(raw) as { content: string; encoding?: string };
          const text = encoding === 'base64' ? Buffer.from(content, 'base64').toString('utf8') : content;
          const sha = createHash('sha1').update(`blob ${Buffer.byteLength(text)}\0${text}`).digest('hex');
          blobs.set(sha, text);
          return json(201, { sha, url: `${targetUrl}${url.pathname}/${sha}` });
        }
        let body = raw;
        if (method === 'POST' && /\/git\/trees$/.test(url.pathname)) {
          const tree = JSON.parse(raw) as { base_tree?: string; tree: { path: string; mode: string; type: string; sha?: string | null; content?: string }[] };
          tree.tree = tree.tree.map((entry) => (entry.sha && blobs.has(entry.sha) ? { path: entry.path, mode: entry.mode, type: entry.type, content: blobs.get(entry.sha)! } : entry));
          body = JSON.stringify(tree);
        }
        if (method === 'POST' && /\/pulls$/.test(url.pathname)) {
          // GitHub accepts head as "owner:branch"; the double takes the branch name only.
          const pull = JSON.parse(raw) as { head: string };
          pull.head = pull.head.replace(/^[^:]+:/, '');
          body = JSON.stringify(pull);
        }
        const headers = forwardableHeaders(request.headers);
        const forwarded = await fetch(`${targetUrl}${url.pathname}${url.search}`, { method, headers, ...(raw ? { body } : {}) });
        let text = await forwarded.text();
        if (method === 'GET' && /\/commits$/.test(url.pathname) && forwarded.ok) {
          // The double's commit list leaves out commit.tree, which the plugin reads; fill it
          // from the double's git commit (not counted: GitHub's own list includes it).
          const list = JSON.parse(text) as { sha: string; commit: { tree?: { sha: string } } }[];
          for (const item of list) {
            if (item.commit.tree) continue;
            const detail = (await (await fetch(`${targetUrl}${url.pathname.replace(/\/commits$/, `/git/commits/${item.sha}`)}`, { headers })).json()) as { tree: { sha: string } };
            item.commit.tree = { sha: detail.tree.sha };
          }
          text = JSON.stringify(list);
        }
        response.writeHead(forwarded.status, { 'content-type': forwarded.headers.get('content-type') ?? 'application/json' });
        response.end(text);
      })().catch((error: unknown) => {
        response.writeHead(502, { 'content-type': 'application/json' });
        response.end(JSON.stringify({ message: String(error) }));
      });
    });
  });
  const listening = await serveOnLoopback(server);
  return {
    url: listening.url,
    calls,
    close: listening.close,
  };
}
