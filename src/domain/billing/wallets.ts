import type { Transaction } from 'sequelize';
import { NotFoundError, ValidationError } from '../../errors.ts';
import { isUuid, pendingHolds, select, toMinor, type LedgerDeps } from './ledger.ts';

export interface Wallet {
  id: string;
  organizationId: string;
  organizationSlug: string;
  currency: string;
  /** Credits − debits: the sum of the wallet's entries. */
  balance: bigint;
  /** Unexpired pending holds. */
  pending: bigint;
  /** balance − pending: what a new hold may take. */
  available: bigint;
}

export async function getWallet(deps: LedgerDeps, tx: Transaction | undefined, walletId: string): Promise<Wallet> {
  if (!isUuid(walletId)) throw new NotFoundError(`No wallet ${walletId}.`);
  const [row] = await select<{ id: string; organization_id: string; slug: string; currency: string; balance: string }>(
    deps,
    tx,
    `SELECT w.id, w.organization_id, o.slug, w.currency, w.balance
     FROM ledger_accounts w JOIN organizations o ON o.id = w.organization_id
     WHERE w.id = :walletId AND w.kind = 'wallet'`,
    { walletId },
  );
  if (!row) throw new NotFoundError(`No wallet ${walletId}.`);
  const balance = toMinor(row.balance);
  const pending = await pendingHolds(deps, tx, walletId, deps.now());
  return {
    id: row.id,
    organizationId: row.organization_id,
    organizationSlug: row.slug,
    currency: row.currency,
    balance,
    pending,
    available: balance - pending,
  };
}

/** The org's wallets, one per currency; what GET /orgs/:org shows as wallet ids. */
export async function listOrganizationWallets(
  deps: LedgerDeps,
  tx: Transaction | undefined,
  organizationId: string,
): Promise<{ id: string; currency: string }[]> {
  return select<{ id: string; currency: string }>(
    deps,
    tx,
    `SELECT id, currency FROM ledger_accounts WHERE kind = 'wallet' AND organization_id = :organizationId ORDER BY currency`,
    { organizationId },
  );
}

export interface LedgerEntry {
  /** Increasing with time; also the pagination cursor. */
  id: string;
  transferId: string;
  kind: string;
  /** Positive credits the wallet, negative debits it. */
  amount: bigint;
  authorizationId: string | null;
  instanceId: string | null;
  reason: string | null;
  createdAt: Date;
}

export interface EntryPage {
  items: LedgerEntry[];
  /** Pass as `cursor` to get the next (older) page; null on the last page. */
  nextCursor: string | null;
}

/** Newest first, keyset-paginated on the entry id (stable while entries are appended). */
export async function listWalletEntries(
  deps: LedgerDeps,
  tx: Transaction | undefined,
  walletId: string,
  page: { limit: number; cursor?: string },
): Promise<EntryPage> {
  if (page.cursor !== undefined && !/^[0-9]{1,19}$/.test(page.cursor)) throw new ValidationError([{ in: 'query', pointer: '/cursor', message: 'is not a cursor from this list' }]);
  const rows = await select<{
    id: string;
    transfer_id: string;
    kind: string;
    amount: string;
    authorization_id: string | null;
    instance_id: string | null;
    reason: string | null;
    created_at: Date;
  }>(
    deps,
    tx,
    `SELECT e.id, e.transfer_id, t.kind, e.amount, t.authorization_id, t.instance_id, t.reason, e.created_at
     FROM ledger_entries e JOIN ledger_transfers t ON t.id = e.transfer_id
     WHERE e.account_id = :walletId ${page.cursor === undefined ? '' : 'AND e.id < :cursor::bigint'}
     ORDER BY e.id DESC LIMIT :limit`,
    { walletId, cursor: page.cursor ?? null, limit: page.limit + 1 },
  );
  const items = rows.slice(0, page.limit).map((row) => ({
    id: String(row.id),
    transferId: row.transfer_id,
    kind: row.kind,
    amount: toMinor(row.amount),
    authorizationId: row.authorization_id,
    instanceId: row.instance_id,
    reason: row.reason,
    createdAt: row.created_at,
  }));
  return { items, nextCursor: rows.length > page.limit ? items.at(-1)!.id : null };
}

export interface LedgerDiscrepancy {
  walletId: string;
  cachedBalance: bigint;
  entriesSum: bigint;
}

/**
 * Checks the ledger's two invariants: all entries together sum to zero (money is neither
 * created nor lost), and each wallet's cached balance equals the sum of its entries.
 */
export async function auditLedger(deps: LedgerDeps, tx?: Transaction): Promise<{ total: bigint; discrepancies: LedgerDiscrepancy[] }> {
  const [totals] = await select<{ total: string | null }>(deps, tx, `SELECT sum(amount) AS total FROM ledger_entries`);
  const rows = await select<{ id: string; balance: string; entries_sum: string | null }>(
    deps,
    tx,
    `SELECT w.id, w.balance, (SELECT sum(e.amount) FROM ledger_entries e WHERE e.account_id = w.id) AS entries_sum
     FROM ledger_accounts w WHERE w.kind = 'wallet'`,
  );
  const discrepancies = rows
    .map((row) => ({ walletId: row.id, cachedBalance: toMinor(row.balance), entriesSum: toMinor(row.entries_sum) }))
    .filter((d) => d.cachedBalance !== d.entriesSum);
  return { total: toMinor(totals?.total), discrepancies };
}
