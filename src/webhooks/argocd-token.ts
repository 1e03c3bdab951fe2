import { createHash, timingSafeEqual } from 'node:crypto';
import { InvalidSignatureError } from '../errors.ts';

/**
 * Checks the `Authorization: Bearer <secret>` header Argo CD Notifications sends: Argo CD
 * cannot sign its webhooks, so a shared secret stands in for a signature. Nothing is parsed or
 * stored before this passes.
 */
export class ArgocdTokenVerifier {
  readonly #digest: Buffer;

  constructor(token: string) {
    if (token === '') throw new Error('Argo CD webhook verification needs a non-empty token');
    this.#digest = sha256(token);
  }

  /** Throws InvalidSignatureError (401) for a missing or wrong bearer secret. */
  verify(headers: Record<string, string | string[] | undefined>): void {
    const authorization = headers['authorization'];
    const header = (Array.isArray(authorization) ? authorization[0] : authorization) ?? '';
    const presented = /^Bearer (.+)$/.exec(header)?.[1];
    // Comparing fixed-length digests keeps the comparison constant-time whatever the length.
    if (!presented || !timingSafeEqual(sha256(presented), this.#digest)) {
      throw new InvalidSignatureError(
        'Missing or wrong bearer secret; set the Authorization header in argocd-notifications-cm to the value of ARGOCD_WEBHOOK_TOKEN.',
      );
    }
  }
}

function sha256(value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest();
}
