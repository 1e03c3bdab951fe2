import { QueryTypes, type Sequelize, type Transaction } from 'sequelize';
import { ForbiddenError, NotFoundError } from '../../errors.ts';
import { requireOrgAccess, type OrgAccess, type OrgAction } from '../organization-access.ts';
import { SERVICE_ACTOR } from './instance-billing.ts';
import type { Principal } from '../principal.ts';
import type { Authorization } from './authorizations.ts';
import { findOrganizationId, type LedgerDeps } from './ledger.ts';
import { getWallet, type Wallet } from './wallets.ts';

/**
 * Who may see and move what: platform admins everything; members of a wallet's org their
 * wallets (others get 404, as if it did not exist).
 */
export async function requireWalletAccess(
  deps: LedgerDeps,
  tx: Transaction | undefined,
  principal: Principal,
  walletId: string,
  action: OrgAction,
): Promise<Wallet> {
  const wallet = await getWallet(deps, tx, walletId);
  if (!principal.platformAdmin) await requireMembership(deps.sequelize, tx, principal, wallet.organizationSlug, action, `No wallet ${walletId}.`);
  return wallet;
}

/**
 * The org a caller may place holds for (write access, or a platform admin), and whether the
 * caller is a member there (not an owner): a member's holds are capped, so that one member
 * cannot promise the org's whole balance away for months.
 */
export async function organizationForHold(deps: LedgerDeps, tx: Transaction, principal: Principal, org: string): Promise<{ organizationId: string; member: boolean }> {
  if (principal.platformAdmin) return { organizationId: await findOrganizationId(deps, tx, org), member: false };
  const access = await requireOrgAccess(deps.sequelize, tx, principal, org, 'write');
  return { organizationId: access.organizationId, member: access.role !== 'owner' };
}

/**
 * Holds are resolved by the service (an instance's setup fee follows the instance), by platform
 * admins, by the member who placed the hold, or by an owner of its org: a member's hold on the
 * whole balance must not lock the org until a platform admin steps in. A hold placed by the
 * service or by a platform admin is theirs to resolve.
 */
export async function requireResolveAccess(
  deps: LedgerDeps,
  tx: Transaction,
  principal: Principal,
  authorization: Authorization,
): Promise<void> {
  if (principal.platformAdmin) return;
  const access = await requireMembership(deps.sequelize, tx, principal, authorization.organizationSlug, 'write', `No authorization ${authorization.id}.`);
  if (authorization.createdBy === principal.subject) return;
  if (authorization.createdBy === SERVICE_ACTOR) {
    throw new ForbiddenError(`Authorization ${authorization.id} is an instance's setup fee, placed by the control plane: it follows the instance (settled when it is ready, released when it ends before).`);
  }
  const placedByMember = await isMember(deps.sequelize, tx, authorization.organizationId, authorization.createdBy);
  if (access.role === 'owner' && placedByMember) return;
  throw new ForbiddenError(
    `Authorization ${authorization.id} was placed by ${placedByMember ? 'another member' : 'a platform admin'}; only they${placedByMember ? `, an owner of ${authorization.organizationSlug}` : ''} or a platform admin may resolve it.`,
  );
}

async function isMember(sequelize: Sequelize, tx: Transaction, organizationId: string, subject: string): Promise<boolean> {
  const [row] = await sequelize.query<{ one: number }>('SELECT 1 AS one FROM memberships WHERE organization_id = :organizationId AND subject = :subject', {
    type: QueryTypes.SELECT,
    transaction: tx,
    replacements: { organizationId, subject },
  });
  return row !== undefined;
}

async function requireMembership(
  sequelize: Sequelize,
  tx: Transaction | undefined,
  principal: Principal,
  orgSlug: string,
  action: OrgAction,
  notFound: string,
): Promise<OrgAccess> {
  try {
    return await requireOrgAccess(sequelize, tx, principal, orgSlug, action);
  } catch (error) {
    // Say nothing about the org itself: for a non-member the resource does not exist.
    if (error instanceof NotFoundError) throw new NotFoundError(notFound);
    throw error;
  }
}
