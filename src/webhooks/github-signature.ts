import { Webhooks } from '@octokit/webhooks';
import { BadRequestError, InvalidSignatureError } from '../errors.ts';

export interface GithubDeliveryHeaders {
  id: string;
  name: string;
  signature: string;
}

const SIGNATURE = /^sha256=[0-9a-f]{64}$/;
const DELIVERY_ID = /^[A-Za-z0-9-]{1,128}$/;
const EVENT_NAME = /^[a-z_]{1,64}$/;

/**
 * Checks GitHub's headers and the X-Hub-Signature-256 HMAC over the raw body, with the current
 * secret and any additional (rotated-out or rotated-in) secrets. Nothing is parsed or stored
 * before this passes.
 */
export class GithubSignatureVerifier {
  readonly #webhooks: Webhooks[];

  constructor(secrets: string[]) {
    if (secrets.length === 0) throw new Error('GitHub webhook verification needs at least one secret');
    // @octokit/webhooks' verify() checks one secret in constant time; one instance per secret.
    this.#webhooks = secrets.map((secret) => new Webhooks({ secret }));
  }

  /** Throws BadRequestError (400) for missing or malformed headers, InvalidSignatureError (401) for a wrong signature. */
  async verify(headers: Record<string, string | string[] | undefined>, rawBody: string | undefined): Promise<GithubDeliveryHeaders> {
    const id = single(headers['x-github-delivery']);
    const name = single(headers['x-github-event']);
    const signature = single(headers['x-hub-signature-256']);
    if (!id || !DELIVERY_ID.test(id)) throw new BadRequestError('The X-GitHub-Delivery header is missing or malformed.');
    if (!name || !EVENT_NAME.test(name)) throw new BadRequestError('The X-GitHub-Event header is missing or malformed.');
    if (!signature) {
      throw new BadRequestError(
        single(headers['x-hub-signature'])
          ? 'Only X-Hub-Signature (SHA-1) was sent; this service requires X-Hub-Signature-256.'
          : 'The X-Hub-Signature-256 header is missing; set a secret on the GitHub webhook.',
      );
    }
    if (!SIGNATURE.test(signature)) throw new BadRequestError('The X-Hub-Signature-256 header is not of the form sha256=<64 hex digits>.');
    if (rawBody === undefined || rawBody === '') throw new BadRequestError('The webhook body is empty or not application/json; configure the GitHub webhook with content type application/json.');

    for (const webhooks of this.#webhooks) {
      if (await webhooks.verify(rawBody, signature)) return { id, name, signature };
    }
    throw new InvalidSignatureError('The X-Hub-Signature-256 signature does not match the body; verify that the webhook secret on GitHub matches GITHUB_WEBHOOK_SECRET.');
  }
}

function single(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}
