import { createHash, randomBytes } from 'node:crypto';
import { QueryTypes, type Sequelize, type Transaction } from 'sequelize';

const TOKEN_PREFIX = 'cpt_';

export function hashApiToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

export function generateApiToken(): string {
  return TOKEN_PREFIX + randomBytes(32).toString('base64url');
}

export function looksLikeApiToken(bearer: string): boolean {
  return bearer.startsWith(TOKEN_PREFIX);
}

export interface ApiTokenGrant {
  name: string;
  subject: string;
  username?: string;
  email?: string;
  platformAdmin: boolean;
  /** An org token's organization: it acts there only, with its membership's role. */
  organizationId?: string;
}

/**
 * Stores `token` (hashed) under `grant.name`, replacing the hash of an earlier token with the
 * same name. Used for the embedded default's development token and by admin tooling.
 */
export async function upsertApiToken(sequelize: Sequelize, token: string, grant: ApiTokenGrant): Promise<void> {
  await sequelize.query(
    `INSERT INTO api_tokens (id, name, token_hash, subject, username, email, platform_admin, created_at, updated_at)
     VALUES (gen_random_uuid(), :name, :hash, :subject, :username, :email, :admin, now(), now())
     ON CONFLICT (name) WHERE organization_id IS NULL DO UPDATE SET token_hash = EXCLUDED.token_hash, subject = EXCLUDED.subject,
       username = EXCLUDED.username, email = EXCLUDED.email, platform_admin = EXCLUDED.platform_admin,
       revoked_at = NULL, updated_at = now()`,
    {
      type: QueryTypes.INSERT,
      replacements: {
        name: grant.name,
        hash: hashApiToken(token),
        subject: grant.subject,
        username: grant.username ?? null,
        email: grant.email ?? null,
        admin: grant.platformAdmin,
      },
    },
  );
}

/**
 * The grant of a live token (not revoked, not expired), or undefined. Records use in the same
 * round trip, at most once a minute per token, so a busy automation token is not a hot row.
 */
export async function findApiTokenGrant(sequelize: Sequelize, token: string): Promise<ApiTokenGrant | undefined> {
  const [row] = await sequelize.query<{ name: string; subject: string; username: string | null; email: string | null; platform_admin: boolean; organization_id: string | null }>(
    `WITH live AS (
       SELECT id, name, subject, username, email, platform_admin, organization_id, last_used_at FROM api_tokens
       WHERE token_hash = :hash AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())
     ), touched AS (
       UPDATE api_tokens t SET last_used_at = now() FROM live
       WHERE t.id = live.id AND (live.last_used_at IS NULL OR live.last_used_at < now() - interval '1 minute')
     )
     SELECT name, subject, username, email, platform_admin, organization_id FROM live`,
    { type: QueryTypes.SELECT, replacements: { hash: hashApiToken(token) } },
  );
  if (!row) return undefined;
  return {
    name: row.name,
    subject: row.subject,
    ...(row.username !== null ? { username: row.username } : {}),
    ...(row.email !== null ? { email: row.email } : {}),
    platformAdmin: row.platform_admin,
    ...(row.organization_id !== null ? { organizationId: row.organization_id } : {}),
  };
}

export interface IssuedApiToken {
  id: string;
  name: string;
  /** The secret itself: shown once, never stored (only its SHA-256 is). */
  token: string;
  platformAdmin: boolean;
  expiresAt: Date;
  createdAt: Date;
}

export interface ApiTokenSummary {
  id: string;
  name: string;
  platformAdmin: boolean;
  expiresAt: Date | null;
  lastUsedAt: Date | null;
  revokedAt: Date | null;
  createdAt: Date;
}

/** Token names are unique per subject: stored as `<subject>/<name>` (the column is unique). */
const ownName = (subject: string, name: string) => `${subject}/${name}`;

/**
 * A new token for `grant.subject` named `name` (unique among that subject's live tokens),
 * expiring in `expiresInDays`; undefined when that subject already has a live token of that
 * name (revoke it first). The secret is returned once.
 */
export async function issueApiToken(sequelize: Sequelize, grant: ApiTokenGrant, expiresInDays: number): Promise<IssuedApiToken | undefined> {
  const token = generateApiToken();
  const [row] = await sequelize.query<{ id: string; expires_at: Date; created_at: Date }>(
    `INSERT INTO api_tokens (id, name, token_hash, subject, username, email, platform_admin, expires_at, created_at, updated_at)
     VALUES (gen_random_uuid(), :stored, :hash, :subject, :username, :email, :admin, now() + make_interval(days => :days), now(), now())
     ON CONFLICT (name) WHERE organization_id IS NULL DO UPDATE SET token_hash = EXCLUDED.token_hash, username = EXCLUDED.username, email = EXCLUDED.email,
       platform_admin = EXCLUDED.platform_admin, expires_at = EXCLUDED.expires_at, revoked_at = NULL, last_used_at = NULL,
       created_at = now(), updated_at = now()
       WHERE api_tokens.revoked_at IS NOT NULL OR api_tokens.expires_at <= now()
     RETURNING id, expires_at, created_at`,
    {
      type: QueryTypes.SELECT,
      replacements: {
        stored: ownName(grant.subject, grant.name),
        hash: hashApiToken(token),
        subject: grant.subject,
        username: grant.username ?? null,
        email: grant.email ?? null,
        admin: grant.platformAdmin,
        days: expiresInDays,
      },
    },
  );
  if (!row) return undefined;
  return { id: row.id, name: grant.name, token, platformAdmin: grant.platformAdmin, expiresAt: row.expires_at, createdAt: row.created_at };
}

/** The subject's tokens (never their secrets), newest first, whoever made them. */
export async function listApiTokens(sequelize: Sequelize, subject: string): Promise<ApiTokenSummary[]> {
  const rows = await sequelize.query<{ id: string; name: string; platform_admin: boolean; expires_at: Date | null; last_used_at: Date | null; revoked_at: Date | null; created_at: Date }>(
    `SELECT id, name, platform_admin, expires_at, last_used_at, revoked_at, created_at FROM api_tokens
      WHERE subject = :subject AND organization_id IS NULL ORDER BY created_at DESC, id DESC LIMIT 200`,
    { type: QueryTypes.SELECT, replacements: { subject } },
  );
  const prefix = ownName(subject, '');
  return rows.map((r) => ({
    id: r.id,
    // Tokens made by admin tooling (upsertApiToken) carry their name as given.
    name: r.name.startsWith(prefix) ? r.name.slice(prefix.length) : r.name,
    platformAdmin: r.platform_admin,
    expiresAt: r.expires_at,
    lastUsedAt: r.last_used_at,
    revokedAt: r.revoked_at,
    createdAt: r.created_at,
  }));
}

/** Revokes one of the subject's tokens (a token may revoke itself); false when it has none with this id. Revoking twice is fine. */
export async function revokeApiToken(sequelize: Sequelize, subject: string, id: string): Promise<boolean> {
  const rows = await sequelize.query<{ id: string }>(
    `UPDATE api_tokens SET revoked_at = coalesce(revoked_at, now()), updated_at = now()
      WHERE id = :id AND subject = :subject AND organization_id IS NULL RETURNING id`,
    { type: QueryTypes.SELECT, replacements: { id, subject } },
  );
  return rows.length > 0;
}

export type OrgTokenRole = 'owner' | 'member' | 'viewer';

/** The subject an org token acts as: its own, so its membership is the only one it has. */
export const orgTokenSubject = (id: string) => `org-token:${id}`;

export interface OrgApiTokenSummary extends Omit<ApiTokenSummary, 'platformAdmin'> {
  role: OrgTokenRole;
  createdBy: string | null;
}

export interface IssuedOrgApiToken extends OrgApiTokenSummary {
  /** The secret itself: shown once, never stored (only its SHA-256 is). */
  token: string;
  subject: string;
  expiresAt: Date;
}

/**
 * A new token of `organizationId` named `name` (unique among the org's live tokens) acting with
 * `role`, in `tx` (the caller adds its membership in the same transaction); undefined when the
 * org already has a live token of that name. A revoked or expired one's name is taken over,
 * with a new id (so a new subject: nothing the old token did is attributed to the new one).
 */
export async function issueOrgApiToken(
  sequelize: Sequelize,
  tx: Transaction,
  input: { organizationId: string; name: string; role: OrgTokenRole; createdBy: string; expiresInDays: number },
): Promise<IssuedOrgApiToken | undefined> {
  await sequelize.query(`DELETE FROM api_tokens WHERE organization_id = :org AND name = :name AND (revoked_at IS NOT NULL OR expires_at <= now())`, {
    type: QueryTypes.DELETE,
    transaction: tx,
    replacements: { org: input.organizationId, name: input.name },
  });
  const token = generateApiToken();
  const [row] = await sequelize.query<{ id: string; subject: string; expires_at: Date; created_at: Date }>(
    `WITH id AS (SELECT gen_random_uuid() AS id)
     INSERT INTO api_tokens (id, name, token_hash, subject, platform_admin, organization_id, role, created_by, expires_at, created_at, updated_at)
     SELECT id.id, :name, :hash, 'org-token:' || id.id, false, :org, :role, :createdBy, now() + make_interval(days => :days), now(), now() FROM id
     ON CONFLICT (organization_id, name) WHERE organization_id IS NOT NULL DO NOTHING
     RETURNING id, subject, expires_at, created_at`,
    {
      type: QueryTypes.SELECT,
      transaction: tx,
      replacements: { name: input.name, hash: hashApiToken(token), org: input.organizationId, role: input.role, createdBy: input.createdBy, days: input.expiresInDays },
    },
  );
  if (!row) return undefined;
  return {
    id: row.id,
    name: input.name,
    token,
    subject: row.subject,
    role: input.role,
    createdBy: input.createdBy,
    expiresAt: row.expires_at,
    lastUsedAt: null,
    revokedAt: null,
    createdAt: row.created_at,
  };
}

/** The organization's tokens (never their secrets), newest first. */
export async function listOrgApiTokens(sequelize: Sequelize, organizationId: string): Promise<OrgApiTokenSummary[]> {
  const rows = await sequelize.query<{ id: string; name: string; role: OrgTokenRole; created_by: string | null; expires_at: Date | null; last_used_at: Date | null; revoked_at: Date | null; created_at: Date }>(
    `SELECT id, name, role, created_by, expires_at, last_used_at, revoked_at, created_at FROM api_tokens
      WHERE organization_id = :org ORDER BY created_at DESC, id DESC LIMIT 200`,
    { type: QueryTypes.SELECT, replacements: { org: organizationId } },
  );
  return rows.map((r) => ({
    id: r.id,
    name: r.name,
    role: r.role,
    createdBy: r.created_by,
    expiresAt: r.expires_at,
    lastUsedAt: r.last_used_at,
    revokedAt: r.revoked_at,
    createdAt: r.created_at,
  }));
}

/** Revokes one of the organization's tokens; undefined when it has none with this id, else its subject. Twice is fine. */
export async function revokeOrgApiToken(sequelize: Sequelize, tx: Transaction, organizationId: string, id: string): Promise<string | undefined> {
  const [row] = await sequelize.query<{ subject: string }>(
    `UPDATE api_tokens SET revoked_at = coalesce(revoked_at, now()), updated_at = now()
      WHERE id = :id AND organization_id = :org RETURNING subject`,
    { type: QueryTypes.SELECT, transaction: tx, replacements: { id, org: organizationId } },
  );
  return row?.subject;
}
