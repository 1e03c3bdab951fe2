import { spawn } from 'node:child_process';

export interface GitOptions {
  /** The repository (a bare repository's directory). */
  gitDir: string;
  input?: string | Buffer;
  env?: Record<string, string>;
}

/** A git command that exited non-zero; stderr is kept for the operator. */
export class GitCommandError extends Error {
  readonly args: string[];
  readonly exitCode: number | null;
  readonly stderr: string;
  constructor(args: string[], exitCode: number | null, stderr: string) {
    super(`git ${args.join(' ')} exited with ${exitCode}: ${stderr.trim()}`);
    this.name = 'GitCommandError';
    this.args = args;
    this.exitCode = exitCode;
    this.stderr = stderr;
  }
}

/**
 * Runs one git command against a bare repository and returns stdout. Arguments are passed
 * as an array (no shell), so no value can become a flag or a second command.
 */
export async function git(args: string[], options: GitOptions): Promise<string> {
  return (await gitBytes(args, options)).toString('utf8');
}

/** git() for output that is not text (`cat-file --batch` of tree objects). */
export function gitBytes(args: string[], options: GitOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const child = spawn('git', args, {
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        HOME: process.env.HOME ?? '/tmp',
        GIT_DIR: options.gitDir,
        GIT_CONFIG_NOSYSTEM: '1',
        GIT_TERMINAL_PROMPT: '0',
        LC_ALL: 'C',
        ...options.env,
      },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => err.push(chunk));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) resolve(Buffer.concat(out));
      else reject(new GitCommandError(args, code, Buffer.concat(err).toString('utf8')));
    });
    // A command that does not read its input may exit before we finish writing it (EPIPE);
    // its exit code, not the pipe, says whether it worked.
    child.stdin.on('error', () => undefined);
    child.stdin.end(options.input ?? '');
  });
}
