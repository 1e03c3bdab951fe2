import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { Webhooks } from '@octokit/webhooks';
import type { Sequelize } from 'sequelize';
import { createApp } from '../../src/api/app.ts';
import { webhookRoutes } from '../../src/api/routes/webhook-routes.ts';
import { createLogger } from '../../src/logger.ts';
import { createMetrics, type Metrics } from '../../src/metrics.ts';
import { ArgocdTokenVerifier } from '../../src/webhooks/argocd-token.ts';
import { GithubSignatureVerifier } from '../../src/webhooks/github-signature.ts';
import { createTestSequelize, useSpecDatabase } from '../support/database.ts';
import { listen, type Listening } from '../support/http.ts';
import { pushPayload } from '../support/webhook-fixtures.ts';

const SECRET = 'delivery-metrics-secret';

describe('webhook_deliveries_total', () => {
  useSpecDatabase();
  let sequelize: Sequelize;
  const servers: Listening[] = [];
  const signer = new Webhooks({ secret: SECRET });

  async function serve(metrics: Metrics, database: Sequelize): Promise<string> {
    const routes = webhookRoutes({
      sequelize: database,
      repository: { isAncestor: () => Promise.resolve(false) },
      baseBranch: 'main',
      converge: async () => {},
      github: new GithubSignatureVerifier([SECRET]),
      argocd: new ArgocdTokenVerifier('argocd-token'),
      metrics,
    });
    const server = await listen(createApp({ logger: createLogger('silent'), metrics, bodyLimitBytes: 1_000_000, routes, authenticate: async () => {} }));
    servers.push(server);
    return server.url;
  }

  async function github(url: string, event: string, body: string, options: { id?: string; signature?: string } = {}): Promise<number> {
    const response = await fetch(`${url}/webhooks/github`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'x-github-event': event,
        'x-github-delivery': options.id ?? randomUUID(),
        'x-hub-signature-256': options.signature ?? (await signer.sign(body)),
      },
      body,
    });
    await response.arrayBuffer();
    return response.status;
  }

  async function counts(metrics: Metrics): Promise<Record<string, number>> {
    const { values } = await metrics.webhookDeliveries.get();
    return Object.fromEntries(values.map((v) => [`${v.labels.source}/${v.labels.outcome}`, v.value]));
  }

  before(() => {
    sequelize = createTestSequelize();
  });
  after(async () => {
    await Promise.all(servers.map((server) => server.close()));
    await sequelize.close();
  });

  it('counts deliveries by source and outcome: processed, duplicate, ignored, rejected', async () => {
    const metrics = createMetrics({ collectDefaults: false });
    const url = await serve(metrics, sequelize);
    const push = JSON.stringify(pushPayload('refs/heads/main', [randomBytes(20).toString('hex')]));
    const id = randomUUID();
    assert.equal(await github(url, 'push', push, { id }), 200);
    assert.equal(await github(url, 'push', push, { id }), 200);
    assert.equal(await github(url, 'issues', '{}'), 202);
    assert.equal(await github(url, 'push', push, { signature: `sha256=${'0'.repeat(64)}` }), 401);
    const argocd = await fetch(`${url}/webhooks/argocd`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: 'Bearer wrong' }, body: '{}' });
    assert.equal(argocd.status, 401);
    assert.deepEqual(await counts(metrics), { 'github/processed': 1, 'github/duplicate': 1, 'github/ignored': 1, 'github/rejected': 1, 'argocd/rejected': 1 });
  });

  it('counts a delivery the database could not take as failed (GitHub redelivers it)', async () => {
    const metrics = createMetrics({ collectDefaults: false });
    const down = new Error('connect ECONNREFUSED');
    const unreachable = { transaction: () => Promise.reject(down), query: () => Promise.reject(down) } as unknown as Sequelize;
    const url = await serve(metrics, unreachable);
    const status = await github(url, 'push', JSON.stringify(pushPayload('refs/heads/main', [randomBytes(20).toString('hex')])));
    assert.ok(status >= 500, String(status));
    assert.deepEqual(await counts(metrics), { 'github/failed': 1 });
  });
});
