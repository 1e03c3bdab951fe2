import { QueryTypes, type Sequelize, type Transaction } from 'sequelize';
import { NotFoundError, UnprocessableError } from '../../errors.ts';

/**
 * What every billing function needs: the database and a clock. The clock is injected so that
 * tests (and metering catch-up) can stand at any instant without sleeping.
 */
export interface LedgerDeps {
  sequelize: Sequelize;
  now(): Date;
}

export type PlatformAccountCode = 'revenue' | 'top-ups' | 'trial-credit';
export type TransferKind = 'top-up' | 'trial-credit' | 'capture' | 'usage';

export interface LockedWallet {
  id: string;
  organizationId: string;
  organizationSlug: string;
  currency: string;
  /** Sum of the wallet's entries (cached on the row, kept equal by postTransfer). */
  balance: bigint;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function isUuid(value: string): boolean {
  return UUID.test(value);
}

/**
 * The most any amount or balance may be, in minor units: what a JSON number carries exactly
 * (2^53 − 1), well inside PostgreSQL's bigint, so every amount the API shows is exact.
 */
export const MAX_MINOR = BigInt(Number.MAX_SAFE_INTEGER);

/**
 * An amount as it entered (a JSON number), as exact minor units; anything a JSON number cannot
 * carry exactly (past 2^53 − 1: 2^53 + 1 already reads as 2^53) is refused with 422 before
 * anything is written.
 */
export function minorAmount(value: number, field: string): bigint {
  if (!isExactMinor(value)) {
    throw new UnprocessableError('amount-out-of-range', `${field} must be a whole number of minor units of at most ${MAX_MINOR}; ${value} is not one that can be carried exactly.`, {
      extensions: { field, max: Number(MAX_MINOR) },
    });
  }
  return BigInt(value);
}

/** Whether a JSON number is an amount the ledger carries exactly: a whole number from 0 to 2^53 − 1. */
export function isExactMinor(value: number): boolean {
  return Number.isSafeInteger(value) && value >= 0;
}

/** PostgreSQL returns bigint and numeric as strings; money stays exact as bigint. */
export function toMinor(value: string | number | bigint | null | undefined): bigint {
  if (value === null || value === undefined) return 0n;
  return BigInt(value);
}

export async function select<T extends object>(
  deps: LedgerDeps,
  tx: Transaction | undefined,
  sql: string,
  replacements: Record<string, unknown> = {},
): Promise<T[]> {
  return deps.sequelize.query<T>(sql, { type: QueryTypes.SELECT, transaction: tx, replacements });
}

/** The org's wallet in `currency`, created (empty) on first use. */
export async function ensureWallet(deps: LedgerDeps, tx: Transaction, organizationId: string, currency: string): Promise<string> {
  return ensureAccount(
    deps,
    tx,
    `INSERT INTO ledger_accounts (kind, organization_id, currency) VALUES ('wallet', :organizationId, :currency)
     ON CONFLICT (organization_id, currency) WHERE kind = 'wallet' DO NOTHING`,
    `SELECT id FROM ledger_accounts WHERE kind = 'wallet' AND organization_id = :organizationId AND currency = :currency`,
    { organizationId, currency },
  );
}

export async function ensurePlatformAccount(deps: LedgerDeps, tx: Transaction, code: PlatformAccountCode, currency: string): Promise<string> {
  return ensureAccount(
    deps,
    tx,
    `INSERT INTO ledger_accounts (kind, platform_code, currency) VALUES ('platform', :code, :currency)
     ON CONFLICT (platform_code, currency) WHERE kind = 'platform' DO NOTHING`,
    `SELECT id FROM ledger_accounts WHERE kind = 'platform' AND platform_code = :code AND currency = :currency`,
    { code, currency },
  );
}

async function ensureAccount(deps: LedgerDeps, tx: Transaction, insert: string, find: string, replacements: Record<string, unknown>): Promise<string> {
  const [existing] = await select<{ id: string }>(deps, tx, find, replacements);
  if (existing) return existing.id;
  // ON CONFLICT waits for a concurrent creator to commit, so both end up with the same row.
  await deps.sequelize.query(insert, { transaction: tx, replacements });
  const [row] = await select<{ id: string }>(deps, tx, find, replacements);
  return row!.id;
}

/**
 * Takes the wallet's row lock for the rest of the transaction. Every change to what a wallet
 * holds or has promised (transfers, new holds) happens under this lock, so checks made after
 * taking it stay true until commit.
 */
export async function lockWallet(deps: LedgerDeps, tx: Transaction, walletId: string): Promise<LockedWallet> {
  if (!isUuid(walletId)) throw new NotFoundError(`No wallet ${walletId}.`);
  const [row] = await select<WalletRow>(deps, tx, `${LOCK_WALLET} WHERE w.id = :walletId AND w.kind = 'wallet' FOR UPDATE OF w`, { walletId });
  if (!row) throw new NotFoundError(`No wallet ${walletId}.`);
  return toLockedWallet(row);
}

/**
 * lockWallet for the org's wallet in `currency`, created (empty) on first use; `created` says it
 * did not exist before this transaction (so a refusal that rolls it back must not name it).
 */
export async function lockOrganizationWallet(deps: LedgerDeps, tx: Transaction, organizationId: string, currency: string): Promise<LockedWallet & { created: boolean }> {
  const [row] = await select<WalletRow>(
    deps,
    tx,
    `${LOCK_WALLET} WHERE w.kind = 'wallet' AND w.organization_id = :organizationId AND w.currency = :currency FOR UPDATE OF w`,
    { organizationId, currency },
  );
  if (row) return { ...toLockedWallet(row), created: false };
  return { ...(await lockWallet(deps, tx, await ensureWallet(deps, tx, organizationId, currency))), created: true };
}

interface WalletRow {
  id: string;
  organization_id: string;
  slug: string;
  currency: string;
  balance: string;
}

const LOCK_WALLET = `SELECT w.id, w.organization_id, o.slug, w.currency, w.balance
  FROM ledger_accounts w JOIN organizations o ON o.id = w.organization_id`;

function toLockedWallet(row: WalletRow): LockedWallet {
  return { id: row.id, organizationId: row.organization_id, organizationSlug: row.slug, currency: row.currency, balance: toMinor(row.balance) };
}

/** Sum of the wallet's pending holds that have not expired at `now`. */
export async function pendingHolds(deps: LedgerDeps, tx: Transaction | undefined, walletId: string, now: Date): Promise<bigint> {
  const [row] = await select<{ pending: string | null }>(
    deps,
    tx,
    `SELECT sum(amount) AS pending FROM billing_authorizations
     WHERE wallet_id = :walletId AND status = 'pending' AND expires_at > :now`,
    { walletId, now },
  );
  return toMinor(row?.pending);
}

export interface TransferInput {
  kind: TransferKind;
  currency: string;
  debitAccountId: string;
  creditAccountId: string;
  amount: bigint;
  authorizationId?: string;
  instanceId?: string;
  reason?: string;
  actor: string;
}

/**
 * Posts one double-entry transfer: the transfer row, a debit entry and a credit entry, and the
 * cached balance of each wallet side. Callers hold the lock of every wallet involved and have
 * checked that a debited wallet can pay. Returns undefined when a unique rule says this
 * transfer already exists (a second trial credit, a second capture of one hold).
 */
export async function postTransfer(deps: LedgerDeps, tx: Transaction, input: TransferInput): Promise<string | undefined> {
  const [id] = await postTransfers(deps, tx, [input]);
  return id;
}

/**
 * The one way money moves: posts each transfer with its debit and credit entries, and adds what
 * the inserted ones move to each wallet's cached balance, in one statement whatever the count
 * (a day of metering catch-up is one round trip, not seventy). Returns each input's transfer
 * id, in order, or undefined where a unique rule says that transfer already exists. Callers
 * hold the lock of every wallet involved and have checked that a debited wallet can pay.
 */
export async function postTransfers(deps: LedgerDeps, tx: Transaction, inputs: TransferInput[]): Promise<(string | undefined)[]> {
  if (inputs.length === 0) return [];
  for (const input of inputs) {
    if (input.amount <= 0n) throw new Error(`transfer amount must be positive, got ${input.amount}`);
  }
  const transfers = inputs.map((input) => ({
    kind: input.kind,
    currency: input.currency,
    debit: input.debitAccountId,
    credit: input.creditAccountId,
    amount: input.amount.toString(),
    authorization_id: input.authorizationId ?? null,
    instance_id: input.instanceId ?? null,
    reason: input.reason ?? null,
    created_by: input.actor,
  }));
  const rows = await select<{ id: string | null }>(
    deps,
    tx,
    // Platform accounts keep no cached balance (see the migration), so only wallets' rows change.
    `WITH input AS MATERIALIZED (
       SELECT gen_random_uuid() AS id, t.*
       FROM ROWS FROM (jsonb_to_recordset(CAST(:transfers AS jsonb)) AS (kind text, currency text, debit uuid, credit uuid, amount bigint,
              authorization_id uuid, instance_id uuid, reason text, created_by text)) WITH ORDINALITY
         AS t(kind, currency, debit, credit, amount, authorization_id, instance_id, reason, created_by, n)
     ), transfer AS (
       INSERT INTO ledger_transfers (id, kind, currency, debit_account_id, credit_account_id, amount, authorization_id, instance_id, reason, created_by, created_at)
       SELECT id, kind, currency, debit, credit, amount, authorization_id, instance_id, reason, created_by, :now FROM input ORDER BY n
       ON CONFLICT DO NOTHING
       RETURNING id, debit_account_id, credit_account_id, amount
     ), entries AS (
       INSERT INTO ledger_entries (transfer_id, account_id, amount, created_at)
       SELECT id, debit_account_id, -amount, :now::timestamptz FROM transfer
       UNION ALL
       SELECT id, credit_account_id, amount, :now::timestamptz FROM transfer
     ), balances AS (
       UPDATE ledger_accounts a SET balance = a.balance + d.delta, updated_at = :now
       FROM (SELECT account_id, sum(delta)::bigint AS delta FROM (
               SELECT debit_account_id AS account_id, -amount AS delta FROM transfer
               UNION ALL SELECT credit_account_id, amount FROM transfer) moves
             GROUP BY account_id) d
       WHERE a.id = d.account_id AND a.kind = 'wallet'
     )
     SELECT transfer.id FROM input LEFT JOIN transfer ON transfer.id = input.id ORDER BY input.n`,
    { transfers: JSON.stringify(transfers), now: deps.now() },
  );
  return rows.map((row) => row.id ?? undefined);
}

/** Resolves an organization named by slug or id. */
export async function findOrganizationId(deps: LedgerDeps, tx: Transaction | undefined, org: string): Promise<string> {
  const [row] = await select<{ id: string }>(
    deps,
    tx,
    isUuid(org) ? `SELECT id FROM organizations WHERE id = :org` : `SELECT id FROM organizations WHERE slug = :org`,
    { org },
  );
  if (!row) throw new NotFoundError(`No organization ${org}.`);
  return row.id;
}
