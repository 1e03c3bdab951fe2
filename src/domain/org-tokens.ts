import { QueryTypes, type Sequelize, type Transaction } from 'sequelize';
import { ConflictError, ForbiddenError, NotFoundError } from '../errors.ts';
import {
  issueOrgApiToken,
  listOrgApiTokens,
  revokeOrgApiToken,
  type IssuedOrgApiToken,
  type OrgApiTokenSummary,
  type OrgTokenRole,
} from '../db/api-tokens.ts';
import { ensureUser, requireOrgAccess } from './organization-access.ts';
import type { Principal } from './principal.ts';

/**
 * Org tokens: owned by an organization rather than a person, so they outlive the member who
 * minted them (CI keeps working when its author leaves). Owners of the org administer them
 * (a platform admin too, member or not). A token acts with its own membership, whose role the
 * minter chose and which is no higher than the minter's (an owner's, for a member minter).
 */
async function administeredOrg(sequelize: Sequelize, tx: Transaction | undefined, principal: Principal, orgSlug: string): Promise<string> {
  if (principal.platformAdmin) {
    const [org] = await sequelize.query<{ id: string }>('SELECT id FROM organizations WHERE slug = :slug', {
      type: QueryTypes.SELECT,
      transaction: tx ?? null,
      replacements: { slug: orgSlug },
    });
    if (!org) throw new NotFoundError(`No organization ${orgSlug}.`);
    return org.id;
  }
  return (await requireOrgAccess(sequelize, tx, principal, orgSlug, 'administer')).organizationId;
}

export function refuseTokenMintedByOrgToken(principal: Principal): void {
  // A token that could mint tokens could outlive its own expiry and revocation.
  if (principal.organizationId !== undefined) throw new ForbiddenError('An org token cannot mint tokens; an owner of the organization can.');
}

export async function mintOrgToken(
  sequelize: Sequelize,
  tx: Transaction,
  principal: Principal,
  orgSlug: string,
  input: { name: string; role: OrgTokenRole; expiresInDays: number },
): Promise<IssuedOrgApiToken> {
  refuseTokenMintedByOrgToken(principal);
  const organizationId = await administeredOrg(sequelize, tx, principal, orgSlug);
  const issued = await issueOrgApiToken(sequelize, tx, { organizationId, name: input.name, role: input.role, createdBy: principal.subject, expiresInDays: input.expiresInDays });
  if (!issued) throw new ConflictError('token-name-taken', `${orgSlug} has a live token named ${input.name}; revoke it first (DELETE /orgs/${orgSlug}/tokens/:id) or choose another name.`);
  await ensureUser(sequelize, tx, { subject: issued.subject, username: `${orgSlug}/${input.name}` });
  await sequelize.query('INSERT INTO memberships (organization_id, subject, role, api_token_id) VALUES (:org, :subject, :role, :id)', {
    type: QueryTypes.INSERT,
    transaction: tx,
    replacements: { org: organizationId, subject: issued.subject, role: input.role, id: issued.id },
  });
  return issued;
}

export async function listOrgTokens(sequelize: Sequelize, principal: Principal, orgSlug: string): Promise<OrgApiTokenSummary[]> {
  return listOrgApiTokens(sequelize, await administeredOrg(sequelize, undefined, principal, orgSlug));
}

/** Revokes the token and removes its membership, so nothing that reads memberships sees it again. */
export async function revokeOrgToken(sequelize: Sequelize, tx: Transaction, principal: Principal, orgSlug: string, id: string): Promise<void> {
  const organizationId = await administeredOrg(sequelize, tx, principal, orgSlug);
  const subject = await revokeOrgApiToken(sequelize, tx, organizationId, id);
  if (subject === undefined) throw new NotFoundError(`${orgSlug} has no token ${id}.`);
  await sequelize.query('DELETE FROM memberships WHERE organization_id = :org AND api_token_id = :id', { type: QueryTypes.DELETE, transaction: tx, replacements: { org: organizationId, id } });
}
