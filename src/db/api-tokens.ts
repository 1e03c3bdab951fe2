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
