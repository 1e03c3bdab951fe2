/**
 * Child process of billing-crash.spec.ts: hammers one wallet with holds, settles, voids and
 * top-ups until it is killed with SIGKILL, wherever it happens to be.
 * Usage: node billing-crash-worker.ts <database url> <organization id> <wallet id>
 */
import { createLogger } from '../../src/logger.ts';
import { createSequelize } from '../../src/db/database.ts';
import { authorize, settle, voidAuthorization } from '../../src/domain/billing/authorizations.ts';
import { creditWallet } from '../../src/domain/billing/credits.ts';

const [url, organizationId, walletId] = process.argv.slice(2) as [string, string, string];
const sequelize = createSequelize({ url, poolMax: 4, logger: createLogger('silent') });
const deps = { sequelize, now: () => new Date() };
let n = 0;
process.stdout.write('ready\n');

async function loop(): Promise<never> {
  for (;;) {
    n += 1;
    try {
      const hold = await sequelize.transaction((tx) =>
        authorize(deps, tx, { organizationId, currency: 'EUR', amount: BigInt(1 + (n % 10)), expiresInSeconds: 3600, actor: 'crash' }),
      );
      if (n % 3 === 0) await sequelize.transaction((tx) => voidAuthorization(deps, tx, { authorizationId: hold.id }));
      else await sequelize.transaction((tx) => settle(deps, tx, { authorizationId: hold.id, amount: BigInt(n % 2), actor: 'crash' }));
    } catch {
      await sequelize.transaction((tx) => creditWallet(deps, tx, { walletId, amount: 100n, reason: 'crash top-up', actor: 'crash' }));
    }
  }
}
await Promise.all([loop(), loop(), loop()]);
