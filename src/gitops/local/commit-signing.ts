import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** The identity the local driver writes commits as (author and committer). */
export const SERVICE_IDENTITY = {
  GIT_AUTHOR_NAME: 'control-plane',
  GIT_AUTHOR_EMAIL: 'control-plane@gsv.invalid',
  GIT_COMMITTER_NAME: 'control-plane',
  GIT_COMMITTER_EMAIL: 'control-plane@gsv.invalid',
};

/** An SSH key the local driver signs its commits with (git's `gpg.format=ssh`, git ≥ 2.34). */
export interface SigningKey {
  /** The private key file (git hands it to `ssh-keygen -Y sign`). */
  path: string;
  /** `ssh-ed25519 AAAA… comment`, derived from the private key. */
  publicKey: string;
  /** `SHA256:…`, as `git log --show-signature` prints it. */
  fingerprint: string;
  /**
   * The line of an allowed-signers file (ssh-keygen(1) ALLOWED SIGNERS) that makes
   * `git -c gpg.ssh.allowedSignersFile=… log --show-signature` say "Good signature" for the
   * service's commits: its committer email, the `git` namespace only, and the public key.
   */
  allowedSigners: string;
}

/** A signing key that cannot be used; the service refuses to start (exit 78) rather than commit unsigned. */
export class SigningKeyError extends Error {
  constructor(detail: string) {
    super(detail);
    this.name = 'SigningKeyError';
  }
}

/**
 * Checks the key once at start-up, as ssh-keygen will use it for every commit: a private key it
 * can read without a passphrase, not readable by group or others (ssh-keygen refuses such a key:
 * "UNPROTECTED PRIVATE KEY FILE"). Never prints the key.
 */
export async function loadSigningKey(file: string): Promise<SigningKey> {
  const stat = await fs.stat(file).catch(() => undefined);
  if (!stat?.isFile()) throw new SigningKeyError(`GITOPS_LOCAL_SIGNING_KEY: ${file} is not a file`);
  if ((stat.mode & 0o077) !== 0) throw new SigningKeyError(`GITOPS_LOCAL_SIGNING_KEY: ${file} is readable by group or others (mode ${(stat.mode & 0o777).toString(8)}); ssh-keygen refuses such a key: chmod 600 it (a Kubernetes Secret volume: defaultMode 0400)`);
  // -P '' : a key with a passphrase fails here instead of hanging on a prompt at the first commit.
  const derived = await run('ssh-keygen', ['-y', '-P', '', '-f', file], { timeout: 10_000 }).catch((error: { stderr?: string }) => {
    throw new SigningKeyError(`GITOPS_LOCAL_SIGNING_KEY: ${file} is not an unencrypted SSH private key (ssh-keygen -y: ${(error.stderr ?? '').trim() || 'failed'})`);
  });
  const publicKey = derived.stdout.trim();
  const fingerprint = await fingerprintOf(publicKey);
  return { path: file, publicKey, fingerprint, allowedSigners: `${SERVICE_IDENTITY.GIT_COMMITTER_EMAIL} namespaces="git" ${publicKey}\n` };
}

async function fingerprintOf(publicKey: string): Promise<string> {
  const child = execFile('ssh-keygen', ['-l', '-E', 'sha256', '-f', '-'], { timeout: 10_000 });
  const output = new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout?.on('data', (chunk: Buffer) => (out += chunk.toString('utf8')));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(out) : reject(new SigningKeyError(`ssh-keygen -l exited with ${code}`))));
  });
  child.stdin?.end(`${publicKey}\n`);
  const [, fingerprint] = (await output).trim().split(/\s+/);
  if (!fingerprint?.startsWith('SHA256:')) throw new SigningKeyError('ssh-keygen -l printed no SHA256 fingerprint');
  return fingerprint;
}

/** The git arguments that make `commit-tree` sign with `key` (none without a key). */
export function signingArgs(key: SigningKey | undefined): string[] {
  return key ? ['-c', 'gpg.format=ssh', '-c', `user.signingKey=${key.path}`] : [];
}
