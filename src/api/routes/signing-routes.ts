import { Type } from '@sinclair/typebox';
import type { SigningKey } from '../../gitops/local/commit-signing.ts';
import { defineRoute, type RouteSpec } from '../route.ts';
import { Nullable } from './api-schemas.ts';

/** Who signs the commits the service writes, as the deployment is configured. */
export type CommitSigning =
  | { driver: 'local'; key: SigningKey | undefined }
  /** `app`: GitHub signs the commits the App creates through the API; `token`: nobody does. */
  | { driver: 'github'; auth: 'app' | 'token' };

/**
 * How an auditor verifies that a commit came from the control plane (issue 17): with the local
 * driver, the allowed-signers line of its SSH key (`git -c gpg.ssh.allowedSignersFile=FILE log
 * --show-signature`); on GitHub, GitHub's own verification.
 */
export function signingRoutes(signing: CommitSigning): RouteSpec[] {
  const answer =
    signing.driver === 'local'
      ? signing.key
        ? { signedBy: 'control-plane' as const, allowedSigners: signing.key.allowedSigners, publicKey: signing.key.publicKey, fingerprint: signing.key.fingerprint, how: 'git -c gpg.ssh.allowedSignersFile=allowed_signers log --show-signature' }
        : { signedBy: 'nobody' as const, allowedSigners: null, publicKey: null, fingerprint: null, how: 'Commits are unsigned: set GITOPS_LOCAL_SIGNING_KEY.' }
      : signing.auth === 'app'
        ? { signedBy: 'github' as const, allowedSigners: null, publicKey: null, fingerprint: null, how: "GitHub signs the commits a GitHub App creates through its API and marks them Verified (GET /repos/{owner}/{repo}/commits/{sha}: commit.verification)." }
        : { signedBy: 'nobody' as const, allowedSigners: null, publicKey: null, fingerprint: null, how: 'Commits created with GITHUB_TOKEN are unsigned (GitHub signs only those of a GitHub App, and merges): configure GITHUB_APP_*.' };
  return [
    defineRoute({
      method: 'get',
      path: '/platform/allowed-signers',
      operationId: 'getCommitSigning',
      summary: 'Who signs the commits the service writes, and how to verify them',
      description: 'With the local driver and GITOPS_LOCAL_SIGNING_KEY: the allowed-signers line (ssh-keygen(1) ALLOWED SIGNERS) to verify every commit the service wrote with `git log --show-signature`. Any authenticated caller: it holds a public key only.',
      tags: ['changes'],
      access: 'authenticated',
      responses: {
        200: {
          description: 'How commits are signed.',
          schema: Type.Object(
            {
              signedBy: Type.Union([Type.Literal('control-plane'), Type.Literal('github'), Type.Literal('nobody')]),
              allowedSigners: Nullable(Type.String()),
              publicKey: Nullable(Type.String()),
              fingerprint: Nullable(Type.String()),
              how: Type.String(),
            },
            { additionalProperties: false },
          ),
        },
        401: { description: 'Problem details (RFC 9457).' },
      },
      handler: ({ ctx }) => {
        ctx.body = answer;
      },
    }),
  ];
}
