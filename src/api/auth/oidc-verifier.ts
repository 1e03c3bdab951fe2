import { createRemoteJWKSet, jwtVerify, type JWTPayload } from 'jose';
import type { Principal } from '../../domain/principal.ts';

export interface OidcSettings {
  issuer: string;
  audience: string;
  jwksUrl: string;
  /** Pinned: a token signed with anything else (none, HS256, ...) is refused. */
  algorithms: string[];
  /** Realm role (Keycloak `realm_access.roles`) that makes the caller a platform admin. */
  adminRole: string;
}

export type VerifyBearer = (token: string) => Promise<Principal>;

interface KeycloakClaims extends JWTPayload {
  preferred_username?: unknown;
  email?: unknown;
  realm_access?: { roles?: unknown };
}

/**
 * Verifies Keycloak access tokens against the realm's JWKS (fetched and cached by jose, refetched
 * when an unknown `kid` shows up). Throws jose's errors; the caller maps them to 401.
 */
export function createOidcVerifier(settings: OidcSettings): VerifyBearer {
  const keys = createRemoteJWKSet(new URL(settings.jwksUrl));
  return async (token) => {
    const { payload } = await jwtVerify<KeycloakClaims>(token, keys, {
      issuer: settings.issuer,
      audience: settings.audience,
      algorithms: settings.algorithms,
      requiredClaims: ['sub', 'exp'],
    });
    const roles = Array.isArray(payload.realm_access?.roles) ? payload.realm_access.roles : [];
    return {
      subject: payload.sub!,
      ...(typeof payload.preferred_username === 'string' ? { username: payload.preferred_username } : {}),
      ...(typeof payload.email === 'string' ? { email: payload.email } : {}),
      platformAdmin: roles.includes(settings.adminRole),
      via: 'jwt',
    };
  };
}
