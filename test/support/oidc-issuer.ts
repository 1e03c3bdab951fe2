import http from 'node:http';
import { exportJWK, generateKeyPair, SignJWT, type JWTPayload, type KeyObject } from 'jose';
import { serveOnLoopback } from './http.ts';

/** A stand-in for Keycloak's JWKS endpoint: a real key pair, its public half served on loopback. */
export interface TestIssuer {
  issuer: string;
  audience: string;
  jwksUrl: string;
  publicKey: KeyObject;
  sign(claims: JWTPayload & Record<string, unknown>, options?: { expiresIn?: string | number; issuer?: string; audience?: string; alg?: 'RS256' | 'ES256' }): Promise<string>;
  close(): Promise<void>;
}

export async function startTestIssuer(): Promise<TestIssuer> {
  const { publicKey, privateKey } = await generateKeyPair('RS256', { extractable: true });
  const ec = await generateKeyPair('ES256', { extractable: true });
  const keys = [
    { ...(await exportJWK(publicKey)), kid: 'test-key', alg: 'RS256', use: 'sig' },
    { ...(await exportJWK(ec.publicKey)), kid: 'test-ec-key', alg: 'ES256', use: 'sig' },
  ];
  const server = http.createServer((req, res) => {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ keys }));
  });
  const listening = await serveOnLoopback(server);
  const issuer = `${listening.url}/realms/gsv`;
  const audience = 'control-plane';
  return {
    issuer,
    audience,
    jwksUrl: `${issuer}/protocol/openid-connect/certs`,
    publicKey: publicKey as KeyObject,
    sign: (claims, options = {}) =>
      new SignJWT(claims)
        .setProtectedHeader(options.alg === 'ES256' ? { alg: 'ES256', kid: 'test-ec-key' } : { alg: 'RS256', kid: 'test-key' })
        .setIssuedAt()
        .setIssuer(options.issuer ?? issuer)
        .setAudience(options.audience ?? audience)
        .setExpirationTime(options.expiresIn ?? '5m')
        .sign(options.alg === 'ES256' ? ec.privateKey : privateKey),
    close: listening.close,
  };
}
