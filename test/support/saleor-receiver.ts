import type { Sequelize } from 'sequelize';
import { createApp } from '../../src/api/app.ts';
import { webhookRoutes } from '../../src/api/routes/webhook-routes.ts';
import { createLogger } from '../../src/logger.ts';
import { createMetrics, type Metrics } from '../../src/metrics.ts';
import { SaleorSignatureVerifier } from '../../src/webhooks/saleor-signature.ts';
import { listen } from './http.ts';

export const CREDIT_PRODUCT = { sku: 'gsv-credit', minorPerUnit: 100n, currency: 'EUR' };

/** POST /webhooks/saleor alone on a loopback port, trusting the Saleor at `apiUrl`. */
export async function startSaleorReceiver(sequelize: Sequelize, apiUrl: string, options: { cooldownMs?: number } = {}): Promise<{ url: string; metrics: Metrics; close(): Promise<void> }> {
  const metrics = createMetrics({ collectDefaults: false });
  const routes = webhookRoutes({
    sequelize,
    repository: { isAncestor: () => Promise.resolve(false) },
    baseBranch: 'main',
    github: undefined,
    argocd: undefined,
    saleor: { verifier: new SaleorSignatureVerifier({ apiUrl, ...options }), product: CREDIT_PRODUCT },
    metrics,
  });
  const server = await listen(createApp({ logger: createLogger('silent'), metrics, bodyLimitBytes: 1_000_000, routes, authenticate: async () => {} }));
  return { url: `${server.url}/webhooks/saleor`, metrics, close: server.close };
}
