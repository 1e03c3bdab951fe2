import type { Context } from 'koa';
import type { Sequelize } from 'sequelize';
import { ForbiddenError, UnauthorizedError } from '../../errors.ts';
import { findApiTokenGrant, looksLikeApiToken } from '../../db/api-tokens.ts';
import type { Principal } from '../../domain/principal.ts';
import type { Authenticate } from '../route.ts';
import type { VerifyBearer } from './oidc-verifier.ts';

export interface AuthenticateDeps {
  sequelize: Sequelize;
  /** Absent when OIDC is not configured: then only API tokens are accepted. */
  verifyJwt?: VerifyBearer;
}

/**
 * The `authenticate` of createApp: a bearer that starts with `cpt_` is an API token looked up
 * by hash; anything else is an OIDC JWT. Every failure is the same 401 (the reason goes to the
 * log, not to the caller). Webhook routes authenticate themselves (signatures), so they pass.
 */
export function createAuthenticate(deps: AuthenticateDeps): Authenticate {
  return async (ctx, access) => {
    if (access === 'webhook') return;
    const principal = await principalOf(ctx, deps);
    ctx.state.principal = principal;
    if (access === 'platform-admin' && !principal.platformAdmin) {
      throw new ForbiddenError('This operation is for platform admins.');
    }
  };
}

async function principalOf(ctx: Context, deps: AuthenticateDeps): Promise<Principal> {
  const match = /^Bearer[ ]+([^ ]+)[ ]*$/i.exec(ctx.get('Authorization'));
  if (!match) throw new UnauthorizedError();
  const bearer = match[1]!;
  if (looksLikeApiToken(bearer)) {
    const grant = await findApiTokenGrant(deps.sequelize, bearer);
    if (!grant) throw new UnauthorizedError('The API token is unknown, revoked or expired.');
    return {
      subject: grant.subject,
      ...(grant.username ? { username: grant.username } : {}),
      ...(grant.email ? { email: grant.email } : {}),
      platformAdmin: grant.platformAdmin,
      via: 'api-token',
      ...(grant.organizationId !== undefined ? { organizationId: grant.organizationId } : {}),
    };
  }
  if (!deps.verifyJwt) throw new UnauthorizedError('OIDC is not configured here; use an API token.');
  try {
    return await deps.verifyJwt(bearer);
  } catch (error) {
    ctx.state.log?.info({ reason: (error as Error).message }, 'bearer token refused');
    throw new UnauthorizedError('The bearer token is not valid.', { headers: { 'WWW-Authenticate': 'Bearer error="invalid_token"' } });
  }
}

/** The caller of an authenticated route (set by createAuthenticate). */
export function principalOfRequest(ctx: Context): Principal {
  const principal = ctx.state.principal as Principal | undefined;
  if (!principal) throw new UnauthorizedError();
  return principal;
}
