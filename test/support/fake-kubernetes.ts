import http from 'node:http';
import { KubeConfig } from '@kubernetes/client-node';
import { serveOnLoopback } from './http.ts';

export interface FakeKubernetes {
  url: string;
  /** A kubeconfig pointing at this server, with `token` as the user's bearer token. */
  kubeConfig(): KubeConfig;
  /** Replaces the Application objects the server holds (recorded JSON, any namespace). */
  setApplications(applications: object[]): void;
  /** Answers every request with this status (an outage) until set back to undefined. */
  setFailure(status: number | undefined): void;
  /** Answers 403 as the RBAC authorizer does while the service account may not list Applications. */
  setForbidden(forbidden: boolean): void;
  /** The next `count` requests that carry a continue token answer 410 Expired, as for a token older than etcd's compaction. */
  expireContinueTokens(count: number): void;
  requests: Array<{ method: string; path: string; query: URLSearchParams; authorization: string | undefined }>;
  close(): Promise<void>;
}

interface Stored {
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
}

const LIST = /^\/apis\/argoproj\.io\/v1alpha1\/namespaces\/([^/]+)\/applications$/;
const TOKEN = 'fake-kubernetes-token';

/**
 * A loopback stand-in for the Kubernetes API server, serving argoproj.io/v1alpha1 Application
 * lists the way the real one does: namespaced, filtered by an equality label selector, paged
 * with limit/continue, 401 without the bearer token, 404 for anything else.
 */
export async function startFakeKubernetes(): Promise<FakeKubernetes> {
  let applications: Stored[] = [];
  let failure: number | undefined;
  let forbidden = false;
  let expiring = 0;
  const requests: FakeKubernetes['requests'] = [];
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://fake');
    requests.push({ method: req.method ?? '', path: url.pathname, query: url.searchParams, authorization: req.headers.authorization });
    const send = (status: number, body: object) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (failure) return send(failure, { kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'ServiceUnavailable', code: failure });
    if (req.headers.authorization !== `Bearer ${TOKEN}`) return send(401, { kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'Unauthorized', code: 401 });
    const match = LIST.exec(url.pathname);
    if (req.method !== 'GET' || !match) return send(404, { kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'NotFound', code: 404 });
    const namespace = decodeURIComponent(match[1]!);
    // The RBAC authorizer's refusal, worded as kube-apiserver words it (a Status, reason Forbidden).
    if (forbidden) {
      return send(403, {
        kind: 'Status',
        apiVersion: 'v1',
        status: 'Failure',
        reason: 'Forbidden',
        code: 403,
        message: `applications.argoproj.io is forbidden: User "system:serviceaccount:cmp:cmp-control-plane" cannot list resource "applications" in API group "argoproj.io" in the namespace "${namespace}"`,
        details: { group: 'argoproj.io', kind: 'applications' },
      });
    }
    // Kubernetes API concepts, "Retrieving large results sets in chunks": an expired continue
    // token is answered 410 Gone (reason Expired); the client must start the list again.
    if (url.searchParams.get('continue') && expiring > 0) {
      expiring -= 1;
      return send(410, {
        kind: 'Status',
        apiVersion: 'v1',
        status: 'Failure',
        reason: 'Expired',
        code: 410,
        message: 'The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.',
      });
    }
    const selector = parseSelector(url.searchParams.get('labelSelector') ?? '');
    const matching = applications.filter(
      (app) => (app.metadata.namespace ?? 'argocd') === namespace && selector.every(([key, value]) => app.metadata.labels?.[key] === value),
    );
    const offset = Number(url.searchParams.get('continue') || 0);
    const limit = Number(url.searchParams.get('limit') || matching.length || 1);
    const page = matching.slice(offset, offset + limit);
    const next = offset + limit < matching.length ? String(offset + limit) : undefined;
    send(200, { apiVersion: 'argoproj.io/v1alpha1', kind: 'ApplicationList', metadata: { resourceVersion: '1', ...(next ? { continue: next } : {}) }, items: page });
  });
  const listening = await serveOnLoopback(server);
  const { url } = listening;
  return {
    url,
    requests,
    setApplications: (list) => (applications = structuredClone(list) as Stored[]),
    setFailure: (status) => (failure = status),
    setForbidden: (value) => (forbidden = value),
    expireContinueTokens: (count) => (expiring = count),
    kubeConfig: () => {
      const config = new KubeConfig();
      config.loadFromOptions({
        clusters: [{ name: 'fake', server: url, skipTLSVerify: true }],
        users: [{ name: 'tester', token: TOKEN }],
        contexts: [{ name: 'fake', cluster: 'fake', user: 'tester' }],
        currentContext: 'fake',
      });
      return config;
    },
    close: listening.close,
  };
}

function parseSelector(selector: string): Array<[string, string]> {
  return selector
    .split(',')
    .filter(Boolean)
    .map((term) => {
      const [key, value] = term.split('=');
      return [key!.trim(), (value ?? '').trim()];
    });
}
