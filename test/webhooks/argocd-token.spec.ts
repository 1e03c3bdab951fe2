import assert from 'node:assert/strict';
import { InvalidSignatureError } from '../../src/errors.ts';
import { ArgocdTokenVerifier } from '../../src/webhooks/argocd-token.ts';

describe('ArgocdTokenVerifier', () => {
  const verifier = new ArgocdTokenVerifier('s3cret-token');

  it('accepts the configured bearer secret', () => {
    verifier.verify({ authorization: 'Bearer s3cret-token' });
  });

  it('rejects a missing, malformed or wrong secret with InvalidSignatureError', () => {
    const wrong = [undefined, '', 's3cret-token', 'Basic s3cret-token', 'Bearer ', 'Bearer s3cret-tokeN', 'Bearer s3cret-token2'];
    for (const authorization of wrong) {
      assert.throws(() => verifier.verify({ authorization }), InvalidSignatureError, String(authorization));
    }
  });
});
