import type { MigrationContext } from '../src/db/migrator.ts';

/**
 * Saleor top-ups. One row per Saleor order that buys credit (keyed by Saleor's order id, so a
 * redelivered or concurrent "order fully paid" finds the row and credits nothing twice), and one
 * row per refund state of such an order (keyed by the order and Saleor's cumulative
 * totalRefunded, so each refund is taken back once). Orders that name no known organization are
 * kept as `unmatched` for a platform admin. Webhook deliveries gain the `saleor` source.
 */
export async function up({ context: { sequelize } }: { context: MigrationContext }): Promise<void> {
  await sequelize.query(`
    ALTER TABLE webhook_deliveries DROP CONSTRAINT webhook_deliveries_source_check;
    ALTER TABLE webhook_deliveries ADD CONSTRAINT webhook_deliveries_source_check CHECK (source IN ('github', 'argocd', 'saleor'));

    CREATE TABLE saleor_orders (
      -- Saleor's global id (base64 of "Order:<uuid>"), as its API and webhooks spell it.
      saleor_order_id text PRIMARY KEY CHECK (length(saleor_order_id) BETWEEN 1 AND 200),
      order_number text NOT NULL CHECK (length(order_number) BETWEEN 1 AND 64),
      status text NOT NULL CHECK (status IN ('credited', 'unmatched')),
      -- Why an unmatched order was not credited: missing-org-metadata or unknown-org.
      unmatched_reason text CHECK (unmatched_reason IN ('missing-org-metadata', 'unknown-org')),
      -- What the order's metadata said (capped): lets an admin see what to fix.
      org_reference text CHECK (length(org_reference) <= 200),
      organization_id uuid REFERENCES organizations(id),
      wallet_id uuid REFERENCES ledger_accounts(id),
      currency char(3) NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
      credit_minor bigint NOT NULL CHECK (credit_minor > 0),
      credit_transfer_id uuid UNIQUE REFERENCES ledger_transfers(id),
      -- The order's money: what was charged before any refund, in the order's minor units.
      order_currency char(3) NOT NULL CHECK (order_currency ~ '^[A-Z]{3}$'),
      paid_minor bigint NOT NULL CHECK (paid_minor > 0),
      -- Taken back so far for refunds, and what could not be taken (the wallet had less).
      debited_minor bigint NOT NULL DEFAULT 0 CHECK (debited_minor >= 0),
      shortfall_minor bigint NOT NULL DEFAULT 0 CHECK (shortfall_minor >= 0),
      delivery_key text,
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now(),
      CHECK ((status = 'credited') = (credit_transfer_id IS NOT NULL)),
      CHECK ((status = 'credited') = (wallet_id IS NOT NULL AND organization_id IS NOT NULL)),
      CHECK ((status = 'unmatched') = (unmatched_reason IS NOT NULL)),
      CHECK (debited_minor + shortfall_minor <= credit_minor)
    );
    CREATE INDEX saleor_orders_unmatched ON saleor_orders (created_at) WHERE status = 'unmatched';
    CREATE INDEX saleor_orders_created ON saleor_orders (created_at);

    CREATE TABLE saleor_refunds (
      saleor_order_id text NOT NULL REFERENCES saleor_orders(saleor_order_id),
      -- Saleor's order.totalRefunded when this refund was seen (minor units of the order's currency).
      refunded_total_minor bigint NOT NULL CHECK (refunded_total_minor > 0),
      due_minor bigint NOT NULL CHECK (due_minor >= 0),
      debited_minor bigint NOT NULL CHECK (debited_minor >= 0),
      shortfall_minor bigint NOT NULL CHECK (shortfall_minor >= 0),
      transfer_id uuid UNIQUE REFERENCES ledger_transfers(id),
      delivery_key text,
      created_at timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (saleor_order_id, refunded_total_minor),
      CHECK (debited_minor + shortfall_minor = due_minor),
      CHECK ((debited_minor > 0) = (transfer_id IS NOT NULL))
    );
  `);
}

export async function down({ context: { sequelize } }: { context: MigrationContext }): Promise<void> {
  await sequelize.query(`
    DROP TABLE saleor_refunds;
    DROP TABLE saleor_orders;
    DELETE FROM webhook_deliveries WHERE source = 'saleor';
    ALTER TABLE webhook_deliveries DROP CONSTRAINT webhook_deliveries_source_check;
    ALTER TABLE webhook_deliveries ADD CONSTRAINT webhook_deliveries_source_check CHECK (source IN ('github', 'argocd'));
  `);
}
