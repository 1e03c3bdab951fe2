import type { Transaction } from 'sequelize';
import { UnprocessableError } from '../../errors.ts';
import { ensurePlatformAccount, ensureWallet, lockWallet, MAX_MINOR, postTransfer, type LedgerDeps } from './ledger.ts';

export interface CreditResult {
  walletId: string;
  /** Undefined when nothing was posted (a trial credit the wallet already had, or a zero trial). */
  transferId: string | undefined;
  amount: bigint;
}

/** A platform admin's top-up: moves `amount` from the platform's top-ups account into the wallet. */
export async function creditWallet(
  deps: LedgerDeps,
  tx: Transaction,
  input: { walletId: string; amount: bigint; reason: string; actor: string },
): Promise<CreditResult> {
  if (input.amount <= 0n) throw new UnprocessableError('invalid-amount', 'A credit must be a positive integer of minor units.');
  const wallet = await lockWallet(deps, tx, input.walletId);
  // Balances travel as JSON numbers: past 2^53 − 1 they would no longer be exact, and every read
  // of the wallet would fail. Refused before anything is written.
  if (wallet.balance + input.amount > MAX_MINOR) {
    throw new UnprocessableError('balance-limit', `The wallet holds ${wallet.balance}; a credit of ${input.amount} would take it past ${MAX_MINOR} minor units, the most a balance may hold.`);
  }
  const source = await ensurePlatformAccount(deps, tx, 'top-ups', wallet.currency);
  const transferId = await postTransfer(deps, tx, {
    kind: 'top-up',
    currency: wallet.currency,
    debitAccountId: source,
    creditAccountId: wallet.id,
    amount: input.amount,
    reason: input.reason,
    actor: input.actor,
  });
  return { walletId: wallet.id, transferId, amount: input.amount };
}

/**
 * The trial credit of a new workspace: creates the org's wallet in `currency` and credits it
 * once (a unique index allows one trial credit per wallet, so calling this again is a no-op).
 * Meant to run inside the workspace-creation transaction.
 */
export async function grantTrialCredit(
  deps: LedgerDeps,
  tx: Transaction,
  input: { organizationId: string; currency: string; amount: bigint; actor: string },
): Promise<CreditResult> {
  const walletId = await ensureWallet(deps, tx, input.organizationId, input.currency);
  if (input.amount <= 0n) return { walletId, transferId: undefined, amount: 0n };
  await lockWallet(deps, tx, walletId);
  const source = await ensurePlatformAccount(deps, tx, 'trial-credit', input.currency);
  const transferId = await postTransfer(deps, tx, {
    kind: 'trial-credit',
    currency: input.currency,
    debitAccountId: source,
    creditAccountId: walletId,
    amount: input.amount,
    reason: 'trial credit for a new workspace',
    actor: input.actor,
  });
  return { walletId, transferId, amount: transferId ? input.amount : 0n };
}
