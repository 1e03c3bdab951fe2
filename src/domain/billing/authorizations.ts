import type { Transaction } from 'sequelize';
import { AuthorizationResolvedError, MemberHoldLimitError, NotFoundError, PaymentRequiredError, UnprocessableError } from '../../errors.ts';
import { ensurePlatformAccount, isUuid, lockOrganizationWallet, lockWallet, postTransfer, select, toMinor, type LedgerDeps } from './ledger.ts';

export type AuthorizationStatus = 'pending' | 'settled' | 'voided' | 'expired';

export interface Authorization {
  id: string;
  walletId: string;
  organizationId: string;
  organizationSlug: string;
  currency: string;
  amount: bigint;
  /** Set once settled: what was charged (the rest of the hold was released). */
  capturedAmount: bigint | null;
  /** As of the caller's clock: a pending hold past its expiry reads as expired. */
  status: AuthorizationStatus;
  reference: string | null;
  /** An instance's setup fee: the instance and the offering version whose fee it is; null otherwise. */
  instanceId: string | null;
  offeringVersionId: string | null;
  expiresAt: Date;
  resolvedAt: Date | null;
  /** Subject that placed the hold, or `control-plane` for holds the service places itself. */
  createdBy: string;
  createdAt: Date;
}

export interface AuthorizeInput {
  organizationId: string;
  currency: string;
  amount: bigint;
  reference?: string;
  /** A setup fee: the instance and the version whose fee this is (the hold follows the instance). */
  purpose?: { instanceId: string; offeringVersionId: string };
  expiresInSeconds: number;
  actor: string;
  /** A member's hold (not an owner's, an admin's or the service's): capped in total and in lifetime. */
  memberLimits?: MemberHoldLimits;
}

export interface MemberHoldLimits {
  /** The most the member may have held at once on the wallet, this hold included. */
  maxPendingMinor: bigint;
  maxSeconds: number;
}

interface AuthorizationRow {
  id: string;
  wallet_id: string;
  organization_id: string;
  slug: string;
  currency: string;
  amount: string;
  captured_amount: string | null;
  status: AuthorizationStatus;
  reference: string | null;
  instance_id: string | null;
  offering_version_id: string | null;
  expires_at: Date;
  resolved_at: Date | null;
  created_by: string;
  created_at: Date;
}

const COLUMNS = `a.id, a.wallet_id, w.organization_id, o.slug, w.currency, a.amount, a.captured_amount, a.status, a.reference,
  a.instance_id, a.offering_version_id, a.expires_at, a.resolved_at, a.created_by, a.created_at`;

const FROM = `billing_authorizations a JOIN ledger_accounts w ON w.id = a.wallet_id JOIN organizations o ON o.id = w.organization_id`;

function toAuthorization(row: AuthorizationRow, now: Date): Authorization {
  const expired = row.status === 'pending' && row.expires_at.getTime() <= now.getTime();
  return {
    id: row.id,
    walletId: row.wallet_id,
    organizationId: row.organization_id,
    organizationSlug: row.slug,
    currency: row.currency,
    amount: toMinor(row.amount),
    capturedAmount: row.captured_amount === null ? null : toMinor(row.captured_amount),
    status: expired ? 'expired' : row.status,
    reference: row.reference,
    instanceId: row.instance_id,
    offeringVersionId: row.offering_version_id,
    expiresAt: row.expires_at,
    resolvedAt: row.resolved_at,
    createdBy: row.created_by,
    createdAt: row.created_at,
  };
}

/**
 * Places a hold on the org's wallet in `currency` (created on demand). Refused with 402 when
 * available = balance − unexpired pending holds would go below zero; checked under the
 * wallet's row lock, so concurrent holds cannot overdraw it together.
 */
export async function authorize(deps: LedgerDeps, tx: Transaction, input: AuthorizeInput): Promise<Authorization> {
  if (input.amount <= 0n) throw new UnprocessableError('invalid-amount', 'An authorization amount must be a positive integer of minor units.');
  if (!Number.isInteger(input.expiresInSeconds) || input.expiresInSeconds <= 0) {
    throw new UnprocessableError('invalid-expiry', 'expiresInSeconds must be a positive integer.');
  }
  const limits = input.memberLimits;
  if (limits && input.expiresInSeconds > limits.maxSeconds) {
    throw new UnprocessableError('hold-lifetime-limit', `A member's hold lasts at most ${limits.maxSeconds} seconds; ask an owner for a longer one.`, {
      extensions: { maxSeconds: limits.maxSeconds, requested: input.expiresInSeconds },
    });
  }
  const now = deps.now();
  const wallet = await lockOrganizationWallet(deps, tx, input.organizationId, input.currency);
  const expiresAt = new Date(now.getTime() + input.expiresInSeconds * 1000);
  // One statement after the lock (so its snapshot sees every hold committed before we got the
  // lock): sum the live holds and insert only if the new one fits. Fewer round trips under the
  // wallet's lock is what bounds holds per second on one wallet.
  const [row] = await select<{ pending: string; mine: string; id: string | null }>(
    deps,
    tx,
    `WITH live AS (
       SELECT amount, created_by FROM billing_authorizations WHERE wallet_id = :walletId AND status = 'pending' AND expires_at > :now
     ), pending AS (
       SELECT coalesce(sum(amount), 0) AS total, coalesce(sum(amount) FILTER (WHERE created_by = :actor), 0) AS mine FROM live
     ), inserted AS (
       INSERT INTO billing_authorizations (wallet_id, amount, reference, instance_id, offering_version_id, expires_at, created_by, created_at, updated_at)
       SELECT :walletId, :amount::bigint, :reference, :instanceId, :offeringVersionId, :expiresAt, :actor, :now, :now FROM pending
       WHERE :balance::bigint - pending.total >= :amount::bigint
         AND (CAST(:cap AS bigint) IS NULL OR pending.mine + :amount::bigint <= CAST(:cap AS bigint))
       RETURNING id
     )
     SELECT pending.total AS pending, pending.mine, inserted.id FROM pending LEFT JOIN inserted ON true`,
    {
      walletId: wallet.id,
      amount: input.amount.toString(),
      balance: wallet.balance.toString(),
      reference: input.reference ?? null,
      instanceId: input.purpose?.instanceId ?? null,
      offeringVersionId: input.purpose?.offeringVersionId ?? null,
      expiresAt,
      actor: input.actor,
      cap: limits ? limits.maxPendingMinor.toString() : null,
      now,
    },
  );
  if (!row?.id && limits && toMinor(row?.mine) + input.amount > limits.maxPendingMinor) {
    throw new MemberHoldLimitError(
      `Your holds on this wallet would come to ${toMinor(row?.mine) + input.amount} minor units; a member may hold at most ${limits.maxPendingMinor} at once. Release one, or ask an owner.`,
      { extensions: { walletId: wallet.created ? null : wallet.id, limit: Number(limits.maxPendingMinor), heldByYou: Number(toMinor(row?.mine)), requested: Number(input.amount) } },
    );
  }
  if (!row?.id) {
    const available = wallet.balance - toMinor(row?.pending);
    // The org has no wallet in this currency: the one made for this request goes with its rollback.
    if (wallet.created) {
      throw new PaymentRequiredError(`The organization has no ${wallet.currency} wallet: nothing was ever credited in ${wallet.currency}. Add ${wallet.currency} credit and retry.`, {
        extensions: { walletId: null, currency: wallet.currency, available: 0, requested: Number(input.amount) },
      });
    }
    throw new PaymentRequiredError(
      `The ${wallet.currency} wallet has ${available} minor units available; ${input.amount} are needed. Add credit and retry.`,
      { extensions: { walletId: wallet.id, currency: wallet.currency, available: Number(available), requested: Number(input.amount) } },
    );
  }
  return {
    id: row.id,
    walletId: wallet.id,
    organizationId: wallet.organizationId,
    organizationSlug: wallet.organizationSlug,
    currency: wallet.currency,
    amount: input.amount,
    capturedAmount: null,
    status: 'pending',
    reference: input.reference ?? null,
    instanceId: input.purpose?.instanceId ?? null,
    offeringVersionId: input.purpose?.offeringVersionId ?? null,
    expiresAt,
    resolvedAt: null,
    createdBy: input.actor,
    createdAt: now,
  };
}

export async function getAuthorization(deps: LedgerDeps, tx: Transaction | undefined, authorizationId: string): Promise<Authorization> {
  if (!isUuid(authorizationId)) throw new NotFoundError(`No authorization ${authorizationId}.`);
  const [row] = await select<AuthorizationRow>(
    deps,
    tx,
    `SELECT ${COLUMNS} FROM ${FROM} WHERE a.id = :authorizationId`,
    { authorizationId },
  );
  if (!row) throw new NotFoundError(`No authorization ${authorizationId}.`);
  return toAuthorization(row, deps.now());
}

/**
 * Locks a hold for resolution: the wallet first, then the hold (the order every writer uses),
 * and checks that it is still pending and unexpired at `now`.
 */
async function lockPending(deps: LedgerDeps, tx: Transaction, authorizationId: string): Promise<Authorization> {
  const { walletId } = await getAuthorization(deps, tx, authorizationId);
  await lockWallet(deps, tx, walletId);
  const [row] = await select<AuthorizationRow>(
    deps,
    tx,
    `SELECT ${COLUMNS} FROM ${FROM}
     WHERE a.id = :authorizationId FOR UPDATE OF a`,
    { authorizationId },
  );
  const authorization = toAuthorization(row!, deps.now());
  if (authorization.status !== 'pending') throw new AuthorizationResolvedError(authorization.id, authorization.status);
  return authorization;
}

/**
 * Captures up to the held amount (all of it by default) from the wallet into revenue and
 * releases the rest, in the caller's transaction. Over-capture is refused (422).
 */
export async function settle(
  deps: LedgerDeps,
  tx: Transaction,
  input: { authorizationId: string; amount?: bigint; actor: string },
): Promise<Authorization> {
  const authorization = await lockPending(deps, tx, input.authorizationId);
  const capture = input.amount ?? authorization.amount;
  if (capture < 0n) throw new UnprocessableError('invalid-amount', 'A capture amount cannot be negative.');
  if (capture > authorization.amount) {
    throw new UnprocessableError(
      'capture-exceeds-authorization',
      `Cannot capture ${capture} minor units: authorization ${authorization.id} holds ${authorization.amount}.`,
      { extensions: { authorizationId: authorization.id, held: Number(authorization.amount), requested: Number(capture) } },
    );
  }
  if (capture > 0n) {
    const revenue = await ensurePlatformAccount(deps, tx, 'revenue', authorization.currency);
    await postTransfer(deps, tx, {
      kind: 'capture',
      currency: authorization.currency,
      debitAccountId: authorization.walletId,
      creditAccountId: revenue,
      amount: capture,
      authorizationId: authorization.id,
      ...(authorization.instanceId ? { instanceId: authorization.instanceId } : {}),
      reason: authorization.reference ?? undefined,
      actor: input.actor,
    });
  }
  await resolve(deps, tx, authorization.id, 'settled', capture);
  return getAuthorization(deps, tx, authorization.id);
}

/** Releases the whole hold. */
export async function voidAuthorization(deps: LedgerDeps, tx: Transaction, input: { authorizationId: string }): Promise<Authorization> {
  const authorization = await lockPending(deps, tx, input.authorizationId);
  await resolve(deps, tx, authorization.id, 'voided', null);
  return getAuthorization(deps, tx, authorization.id);
}

async function resolve(deps: LedgerDeps, tx: Transaction, id: string, status: 'settled' | 'voided', captured: bigint | null): Promise<void> {
  const now = deps.now();
  await deps.sequelize.query(
    `UPDATE billing_authorizations SET status = :status, captured_amount = :captured::bigint, resolved_at = :now, updated_at = :now
     WHERE id = :id AND status = 'pending'`,
    { transaction: tx, replacements: { id, status, captured: captured === null ? null : captured.toString(), now } },
  );
}

/**
 * Marks pending holds past their expiry as expired. Bookkeeping only: an expired hold already
 * stopped counting against the wallet, and cannot be settled, the moment it expired.
 */
export async function expireAuthorizations(deps: LedgerDeps, tx: Transaction): Promise<string[]> {
  const now = deps.now();
  const rows = await select<{ id: string }>(
    deps,
    tx,
    `UPDATE billing_authorizations SET status = 'expired', resolved_at = :now, updated_at = :now
     WHERE status = 'pending' AND expires_at <= :now RETURNING id`,
    { now },
  );
  return rows.map((r) => r.id);
}

/** A wallet's holds, newest first; `status` as the API shows it (an unexpired pending hold is pending, a lapsed one expired). */
export async function listWalletAuthorizations(
  deps: LedgerDeps,
  tx: Transaction | undefined,
  walletId: string,
  filter: { limit: number; status?: 'pending' | 'settled' | 'voided' | 'expired' },
): Promise<Authorization[]> {
  const status = filter.status;
  const rows = await select<AuthorizationRow>(
    deps,
    tx,
    `SELECT ${COLUMNS} FROM ${FROM}
     WHERE a.wallet_id = :walletId
       AND (CAST(:status AS text) IS NULL
            OR (:status = 'pending' AND a.status = 'pending' AND a.expires_at > :now)
            OR (:status = 'expired' AND (a.status = 'expired' OR (a.status = 'pending' AND a.expires_at <= :now)))
            OR (:status IN ('settled', 'voided') AND a.status::text = :status))
     ORDER BY a.created_at DESC, a.id DESC LIMIT :limit`,
    { walletId, status: status ?? null, now: deps.now(), limit: filter.limit },
  );
  return rows.map((row) => toAuthorization(row, deps.now()));
}

/**
 * Releases the pending holds `subject` placed on the org's wallets: someone who left the org (or
 * may only read now) has no purpose left for them, and could not resolve them any more.
 */
export async function releaseHoldsOf(deps: LedgerDeps, tx: Transaction, organizationId: string, subject: string): Promise<string[]> {
  const rows = await select<{ id: string }>(
    deps,
    tx,
    `SELECT a.id FROM billing_authorizations a JOIN ledger_accounts w ON w.id = a.wallet_id
     WHERE w.organization_id = :organizationId AND a.created_by = :subject AND a.status = 'pending' AND a.expires_at > :now
     ORDER BY a.wallet_id, a.id`,
    { organizationId, subject, now: deps.now() },
  );
  const released: string[] = [];
  for (const { id } of rows) {
    try {
      released.push((await voidAuthorization(deps, tx, { authorizationId: id })).id);
    } catch (error) {
      if (!(error instanceof AuthorizationResolvedError)) throw error;
    }
  }
  return released;
}
