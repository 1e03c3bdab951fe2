import { createHash, randomBytes } from 'node:crypto';
import { QueryTypes, type Sequelize } from 'sequelize';

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
}

/**
 * Stores `token` (hashed) under `grant.name`, replacing the hash of an earlier token with the
 * same name. Used for the embedded default's development token and by admin tooling.
 */
export async function upsertApiToken(sequelize: Sequelize, token: string, grant: ApiTokenGrant): Promise<void> {
  await sequelize.query(
    `INSERT INTO api_tokens (id, name, token_hash, subject, username, email, platform_admin, created_at, updated_at)
     VALUES (gen_random_uuid(), :name, :hash, :subject, :username, :email, :admin, now(), now())
     ON CONFLICT (name) DO UPDATE SET token_hash = EXCLUDED.token_hash, subject = EXCLUDED.subject,
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
  const [row] = await sequelize.query<{ name: string; subject: string; username: string | null; email: string | null; platform_admin: boolean }>(
    `WITH live AS (
       SELECT id, name, subject, username, email, platform_admin, last_used_at FROM api_tokens
       WHERE token_hash = :hash AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())
     ), touched AS (
       UPDATE api_tokens t SET last_used_at = now() FROM live
       WHERE t.id = live.id AND (live.last_used_at IS NULL OR live.last_used_at < now() - interval '1 minute')
     )
     SELECT name, subject, username, email, platform_admin FROM live`,
    { type: QueryTypes.SELECT, replacements: { hash: hashApiToken(token) } },
  );
  if (!row) return undefined;
  return {
    name: row.name,
    subject: row.subject,
    ...(row.username !== null ? { username: row.username } : {}),
    ...(row.email !== null ? { email: row.email } : {}),
    platformAdmin: row.platform_admin,
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
     ON CONFLICT (name) DO UPDATE SET token_hash = EXCLUDED.token_hash, username = EXCLUDED.username, email = EXCLUDED.email,
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
      WHERE subject = :subject ORDER BY created_at DESC, id DESC LIMIT 200`,
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
      WHERE id = :id AND subject = :subject RETURNING id`,
    { type: QueryTypes.SELECT, replacements: { id, subject } },
  );
  return rows.length > 0;
}
