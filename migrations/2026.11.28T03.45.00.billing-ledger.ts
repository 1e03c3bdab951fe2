import type { MigrationContext } from '../src/db/migrator.ts';

/**
 * The billing ledger: accounts (a wallet per org and currency, platform accounts per currency),
 * double-entry transfers and their entries (append-only, enforced here), holds, and the
 * hours that metering has charged (one row per instance and hour).
 */
export async function up({ context: { sequelize } }: { context: MigrationContext }): Promise<void> {
  await sequelize.query(`
    CREATE TYPE ledger_account_kind AS ENUM ('wallet', 'platform');
    CREATE TYPE authorization_status AS ENUM ('pending', 'settled', 'voided', 'expired');

    CREATE TABLE ledger_accounts (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      kind ledger_account_kind NOT NULL,
      organization_id uuid REFERENCES organizations(id),
      platform_code text CHECK (platform_code IN ('revenue', 'top-ups', 'trial-credit')),
      currency char(3) NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
      -- Cached sum of the wallet's entries, updated under the wallet's row lock with every
      -- transfer. Platform accounts keep 0 here (their balance is the sum of their entries):
      -- caching it would make the revenue account one hot row that serialises every capture.
      balance bigint NOT NULL DEFAULT 0,
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now(),
      CHECK ((kind = 'wallet') = (organization_id IS NOT NULL)),
      CHECK ((kind = 'platform') = (platform_code IS NOT NULL)),
      CHECK (kind = 'wallet' OR balance = 0),
      CHECK (balance >= 0),
      UNIQUE (id, currency)
    );
    CREATE UNIQUE INDEX ledger_accounts_wallet ON ledger_accounts (organization_id, currency) WHERE kind = 'wallet';
    CREATE UNIQUE INDEX ledger_accounts_platform ON ledger_accounts (platform_code, currency) WHERE kind = 'platform';

    CREATE TABLE billing_authorizations (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      wallet_id uuid NOT NULL REFERENCES ledger_accounts(id),
      amount bigint NOT NULL CHECK (amount > 0),
      captured_amount bigint CHECK (captured_amount >= 0 AND captured_amount <= amount),
      status authorization_status NOT NULL DEFAULT 'pending',
      reference text CHECK (length(reference) BETWEEN 1 AND 200),
      expires_at timestamptz NOT NULL,
      resolved_at timestamptz,
      created_by text NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now(),
      CHECK ((status = 'settled') = (captured_amount IS NOT NULL)),
      CHECK ((status = 'pending') = (resolved_at IS NULL))
    );
    CREATE INDEX billing_authorizations_pending ON billing_authorizations (wallet_id, expires_at) WHERE status = 'pending';
    CREATE INDEX billing_authorizations_reference ON billing_authorizations (reference, created_at) WHERE reference IS NOT NULL;

    -- A hold resolves at most once, whatever the code above does.
    CREATE FUNCTION billing_authorization_resolves_once() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF OLD.status <> 'pending' THEN
        RAISE EXCEPTION 'authorization % is already %', OLD.id, OLD.status USING ERRCODE = 'integrity_constraint_violation';
      END IF;
      IF NEW.amount <> OLD.amount OR NEW.wallet_id <> OLD.wallet_id THEN
        RAISE EXCEPTION 'authorization % cannot change its amount or wallet', OLD.id USING ERRCODE = 'integrity_constraint_violation';
      END IF;
      RETURN NEW;
    END $$;
    CREATE TRIGGER billing_authorizations_resolve_once BEFORE UPDATE ON billing_authorizations
      FOR EACH ROW EXECUTE FUNCTION billing_authorization_resolves_once();

    CREATE TABLE ledger_transfers (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      kind text NOT NULL CHECK (kind IN ('top-up', 'trial-credit', 'capture', 'usage')),
      currency char(3) NOT NULL,
      debit_account_id uuid NOT NULL,
      credit_account_id uuid NOT NULL,
      amount bigint NOT NULL CHECK (amount > 0),
      authorization_id uuid REFERENCES billing_authorizations(id),
      instance_id uuid REFERENCES instances(id),
      reason text,
      created_by text NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      CHECK (debit_account_id <> credit_account_id),
      -- Both sides in the transfer's currency.
      FOREIGN KEY (debit_account_id, currency) REFERENCES ledger_accounts (id, currency),
      FOREIGN KEY (credit_account_id, currency) REFERENCES ledger_accounts (id, currency)
    );
    CREATE UNIQUE INDEX ledger_transfers_one_trial_credit ON ledger_transfers (credit_account_id) WHERE kind = 'trial-credit';
    CREATE UNIQUE INDEX ledger_transfers_one_capture ON ledger_transfers (authorization_id) WHERE kind = 'capture';

    -- amount > 0 credits the account, amount < 0 debits it; a wallet's balance is the sum.
    CREATE TABLE ledger_entries (
      id bigserial PRIMARY KEY,
      transfer_id uuid NOT NULL REFERENCES ledger_transfers(id),
      account_id uuid NOT NULL REFERENCES ledger_accounts(id),
      amount bigint NOT NULL CHECK (amount <> 0),
      created_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX ledger_entries_account ON ledger_entries (account_id, id);
    CREATE INDEX ledger_entries_transfer ON ledger_entries (transfer_id);

    -- Checked at commit: every transfer's entries sum to zero.
    CREATE FUNCTION ledger_transfer_balances() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE total numeric;
    BEGIN
      SELECT sum(amount) INTO total FROM ledger_entries WHERE transfer_id = NEW.transfer_id;
      IF total <> 0 THEN
        RAISE EXCEPTION 'transfer % does not balance (entries sum to %)', NEW.transfer_id, total USING ERRCODE = 'integrity_constraint_violation';
      END IF;
      RETURN NULL;
    END $$;
    CREATE CONSTRAINT TRIGGER ledger_entries_balanced AFTER INSERT ON ledger_entries
      DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ledger_transfer_balances();

    CREATE TABLE metered_hours (
      instance_id uuid NOT NULL REFERENCES instances(id),
      hour timestamptz NOT NULL,
      wallet_id uuid NOT NULL REFERENCES ledger_accounts(id),
      amount bigint NOT NULL CHECK (amount >= 0),
      transfer_id uuid REFERENCES ledger_transfers(id),
      created_at timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (instance_id, hour),
      CHECK ((amount = 0) = (transfer_id IS NULL))
    );

    -- The ledger is append-only: history is corrected by new transfers, never rewritten.
    CREATE FUNCTION ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      RAISE EXCEPTION '% is append-only: % is not allowed', TG_TABLE_NAME, TG_OP USING ERRCODE = 'restrict_violation';
    END $$;
    CREATE TRIGGER ledger_entries_append_only BEFORE UPDATE OR DELETE ON ledger_entries
      FOR EACH ROW EXECUTE FUNCTION ledger_append_only();
    CREATE TRIGGER ledger_entries_no_truncate BEFORE TRUNCATE ON ledger_entries
      FOR EACH STATEMENT EXECUTE FUNCTION ledger_append_only();
    CREATE TRIGGER ledger_transfers_append_only BEFORE UPDATE OR DELETE ON ledger_transfers
      FOR EACH ROW EXECUTE FUNCTION ledger_append_only();
    CREATE TRIGGER ledger_transfers_no_truncate BEFORE TRUNCATE ON ledger_transfers
      FOR EACH STATEMENT EXECUTE FUNCTION ledger_append_only();
    CREATE TRIGGER metered_hours_append_only BEFORE UPDATE OR DELETE ON metered_hours
      FOR EACH ROW EXECUTE FUNCTION ledger_append_only();
    CREATE TRIGGER metered_hours_no_truncate BEFORE TRUNCATE ON metered_hours
      FOR EACH STATEMENT EXECUTE FUNCTION ledger_append_only();
  `);
}

export async function down({ context: { sequelize } }: { context: MigrationContext }): Promise<void> {
  await sequelize.query(`
    DROP TABLE metered_hours;
    DROP TABLE ledger_entries;
    DROP TABLE ledger_transfers;
    DROP TABLE billing_authorizations;
    DROP TABLE ledger_accounts;
    DROP FUNCTION ledger_append_only();
    DROP FUNCTION ledger_transfer_balances();
    DROP FUNCTION billing_authorization_resolves_once();
    DROP TYPE authorization_status;
    DROP TYPE ledger_account_kind;
  `);
}
