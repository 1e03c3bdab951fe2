import { createRemoteJWKSet, decodeProtectedHeader, errors, flattenedVerify } from 'jose';
import { BadRequestError, InvalidSignatureError, ServiceUnavailableError } from '../errors.ts';

export interface SaleorDelivery {
  /** Saleor-Event, lower case as Saleor sends it (e.g. order_fully_paid). */
  event: string;
}

export interface SaleorSignatureOptions {
  /** SALEOR_API_URL: the only Saleor whose deliveries are accepted, and whose JWKS is read. */
  apiUrl: string;
  /** Default 30 s (jose's): how soon after a fetch an unknown key id may fetch the JWKS again. */
  cooldownMs?: number;
}

const EVENT = /^[a-z_]{1,64}$/;
/** A detached compact JWS: `<protected header>..<signature>` (RFC 7515 appendix F). */
const DETACHED_JWS = /^([A-Za-z0-9_-]{1,4096})\.\.([A-Za-z0-9_-]{1,4096})$/;
const HMAC_HEX = /^[0-9a-f]{64}$/;

/** Where Saleor serves its public keys: saleor/urls.py routes `.well-known/jwks.json` at the site root. */
export function saleorJwksUrl(apiUrl: string): URL {
  return new URL('/.well-known/jwks.json', new URL(apiUrl).origin);
}

/**
 * Checks a Saleor delivery as Saleor signs it (saleor/webhook/transport/__init__.py,
 * signature_for_payload, and saleor/core/jwt_manager.py, jws_encode): a webhook without a secret
 * key is signed with the instance's RSA key, RS256, as a detached JWS with an unencoded payload
 * (RFC 7797: `b64: false`, `crit: ["b64"]`, `kid` the key's RFC 7638 thumbprint), sent in
 * Saleor-Signature. The keys come from the instance's JWKS (jose's remote set: cached 10 minutes,
 * read again when an unknown kid shows up, so a rotated key is picked up). Nothing is parsed before this passes.
 *
 * Not @saleor/app-sdk's verifySignatureWithJwks: it takes the JWKS as a string and parses it on
 * every call, pins no algorithm, and its webhook validator fetches the JWKS again after every
 * failed check, without a cooldown, so each forged delivery would cost a request to Saleor.
 */
export class SaleorSignatureVerifier {
  readonly #apiUrl: string;
  readonly #keys: ReturnType<typeof createRemoteJWKSet>;

  constructor(options: SaleorSignatureOptions) {
    this.#apiUrl = normalizeApiUrl(options.apiUrl);
    this.#keys = createRemoteJWKSet(saleorJwksUrl(options.apiUrl), {
      ...(options.cooldownMs !== undefined ? { cooldownDuration: options.cooldownMs } : {}),
    });
  }

  /**
   * Throws BadRequestError (400) for missing or malformed headers, InvalidSignatureError (401) for
   * a signature that is not the configured Saleor's, ServiceUnavailableError (503, which Saleor
   * retries) when its JWKS cannot be read or may not show a just-rotated key yet.
   */
  async verify(headers: Record<string, string | string[] | undefined>, rawBody: string | undefined): Promise<SaleorDelivery> {
    const event = single(headers['saleor-event']);
    const apiUrl = single(headers['saleor-api-url']);
    const signature = single(headers['saleor-signature']);
    if (!event || !EVENT.test(event)) throw new BadRequestError('The Saleor-Event header is missing or malformed.');
    if (!apiUrl) throw new BadRequestError('The Saleor-Api-Url header is missing.');
    if (!signature) throw new BadRequestError('The Saleor-Signature header is missing.');
    if (HMAC_HEX.test(signature)) {
      throw new BadRequestError('Saleor-Signature is an HMAC (the webhook has a secret key): remove the secret key from the Saleor webhook so that Saleor signs with its JWKS key.');
    }
    const parts = DETACHED_JWS.exec(signature);
    if (!parts) throw new BadRequestError('Saleor-Signature is not a detached JWS (<header>..<signature>).');
    if (rawBody === undefined || rawBody === '') throw new BadRequestError('The webhook body is empty or not application/json.');
    if (normalizeApiUrl(apiUrl) !== this.#apiUrl) {
      throw new InvalidSignatureError('The delivery comes from another Saleor (Saleor-Api-Url); only the one in SALEOR_API_URL is trusted.');
    }

    let header: ReturnType<typeof decodeProtectedHeader>;
    try {
      header = decodeProtectedHeader(signature);
    } catch {
      throw new InvalidSignatureError('The Saleor-Signature header is not a JWS.');
    }
    if (header.alg !== 'RS256' || header.b64 !== false || !Array.isArray(header.crit) || !header.crit.includes('b64') || typeof header.kid !== 'string') {
      throw new InvalidSignatureError('Saleor-Signature is not signed as Saleor signs (RS256, b64 false, crit b64, kid).');
    }

    // Whether an unknown kid can make jose read the JWKS again in this call (see createRemoteJWKSet).
    const mayRefetch = !this.#keys.coolingDown || !this.#keys.fresh;
    try {
      await flattenedVerify({ protected: parts[1]!, payload: Buffer.from(rawBody, 'utf8'), signature: parts[2]! }, this.#keys, { algorithms: ['RS256'] });
    } catch (error) {
      if (error instanceof errors.JWSSignatureVerificationFailed) {
        throw new InvalidSignatureError('The Saleor-Signature does not match the body for the key it names.');
      }
      if (error instanceof errors.JWKSNoMatchingKey) {
        if (!mayRefetch) {
          throw new ServiceUnavailableError(`No key ${header.kid} in Saleor's JWKS, read less than the cooldown ago; if Saleor rotated its key, a retry will find it.`, { headers: { 'Retry-After': '30' } });
        }
        throw new InvalidSignatureError(`Saleor's JWKS has no key ${header.kid}.`);
      }
      if (error instanceof errors.JWSInvalid || error instanceof errors.JOSEAlgNotAllowed || error instanceof errors.JWKSMultipleMatchingKeys || error instanceof errors.JOSENotSupported) {
        throw new InvalidSignatureError(`The Saleor-Signature cannot be verified: ${error.code}.`);
      }
      throw new ServiceUnavailableError(`Saleor's JWKS at ${saleorJwksUrl(this.#apiUrl).href} could not be read; Saleor will retry the delivery.`, { cause: error });
    }
    return { event };
  }
}

/** Saleor sends its API URL with a trailing slash (`/graphql/`); compare without caring about that or case of the host. */
function normalizeApiUrl(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.origin}${parsed.pathname.replace(/\/+$/, '')}`;
  } catch {
    return '';
  }
}

function single(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}
