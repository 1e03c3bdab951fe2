import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics.ts';
import { git, GitCommandError } from '../gitops/local/git.ts';
import type { BackgroundTask } from './background-task.ts';
import { backoffMs } from './change-worker.ts';

export interface RemotePusherOptions {
  /** The local driver's bare repository. */
  gitDir: string;
  /** Where to push; may carry credentials, so it is never logged or put on a command line. */
  url: string;
  baseBranch: string;
  /** Branches the service owns and may force-move (the publisher rebuilds them). */
  ownedPrefix: string;
  logger: Logger;
  metrics?: Pick<Metrics, 'gitopsPushes' | 'gitopsPushPending' | 'gitopsPushLastSuccess'>;
  /** Multiplies the change worker's backoff (1 s doubling to 5 min); tests make it small. */
  backoffScale?: number;
}

/** The remote's name inside the git process; its URL travels in the environment, not in argv. */
const REMOTE = 'gitops-push';

/**
 * Mirrors the local driver's refs to a remote (`git push`) for self-hosted Git servers.
 * Coalescing: every ref move calls notify(); one push at a time carries everything moved
 * since, with one command: the base branch without force (a remote that diverged is refused,
 * not overwritten) and the service's own branches (`+refs/heads/<ownedPrefix>*`) forced, as
 * the publisher may rebuild them. A failed push never blocks or loses a commit: the refs stay
 * in the local repository, the push is retried with backoff, and the first push after a
 * start carries whatever a previous process did not get out.
 */
export class RemotePusher implements BackgroundTask {
  readonly name = 'gitops-remote-pusher';
  readonly #options: RemotePusherOptions;
  readonly #log: Logger;
  #owed = false;
  #failures = 0;
  #stopping = false;
  #running: Promise<void> | undefined;
  #wake: (() => void) | undefined;
  /** Resolvers of flush(), called once nothing is owed. */
  #flushed: (() => void)[] = [];

  constructor(options: RemotePusherOptions) {
    this.#options = options;
    this.#log = options.logger.child({ task: this.name, remote: redactUrl(options.url) });
  }

  /** Starts with a full push: what moved while no process was pushing goes out now. */
  start(): void {
    this.notify();
  }

  /** Some ref moved: push soon (joins a push that is waiting, follows one in flight). */
  notify(): void {
    if (this.#stopping) return;
    this.#owed = true;
    this.#options.metrics?.gitopsPushPending.set(1);
    this.#running ??= this.#drain().finally(() => (this.#running = undefined));
  }

  /** Resolves when nothing is owed to the remote (tests; a push that keeps failing never resolves). */
  flush(): Promise<void> {
    if (!this.#owed && !this.#running) return Promise.resolve();
    return new Promise((resolve) => this.#flushed.push(resolve));
  }

  /** Lets a push in flight finish; what is still owed goes out at the next start. */
  async stop(): Promise<void> {
    this.#stopping = true;
    this.#wake?.();
    await this.#running;
  }

  async #drain(): Promise<void> {
    while (this.#owed && !this.#stopping) {
      this.#owed = false;
      try {
        await this.#push();
        this.#failures = 0;
        this.#options.metrics?.gitopsPushes.inc({ outcome: 'pushed' });
        this.#options.metrics?.gitopsPushLastSuccess.set(Date.now() / 1000);
      } catch (error) {
        this.#owed = true;
        this.#failures += 1;
        this.#options.metrics?.gitopsPushes.inc({ outcome: 'failed' });
        const delay = Math.round(backoffMs(this.#failures) * (this.#options.backoffScale ?? 1));
        this.#log.warn({ reason: this.#reason(error), failures: this.#failures, retryInMs: delay }, 'push to the GitOps remote failed; commits are kept and the push retried');
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, delay);
          this.#wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        this.#wake = undefined;
      }
    }
    if (!this.#owed) {
      this.#options.metrics?.gitopsPushPending.set(0);
      for (const resolve of this.#flushed.splice(0)) resolve();
    }
  }

  /** Why a push failed, fit for a log: git's stderr can quote the URL, so it is masked. */
  #reason(error: unknown): string {
    if (!(error instanceof GitCommandError)) return redactUrl((error as Error).message, this.#options.url);
    return `git push exited with ${error.exitCode}: ${redactUrl(error.stderr.trim(), this.#options.url)}`;
  }

  async #push(): Promise<void> {
    const { baseBranch, ownedPrefix, url, gitDir } = this.#options;
    const refspecs = [`refs/heads/${baseBranch}:refs/heads/${baseBranch}`, `+refs/heads/${ownedPrefix}*:refs/heads/${ownedPrefix}*`];
    const out = await git(['push', '--porcelain', REMOTE, ...refspecs], {
      gitDir,
      env: { GIT_CONFIG_COUNT: '1', GIT_CONFIG_KEY_0: `remote.${REMOTE}.url`, GIT_CONFIG_VALUE_0: url },
    });
    const updated = out.split('\n').filter((line) => /^[ +*-]\t/.test(line));
    if (updated.length > 0) this.#log.debug({ refs: updated.map((line) => line.split('\t')[1]) }, 'pushed to the GitOps remote');
  }
}

/** The text with the URL's user and password (and any other `scheme://user:secret@`) masked. */
export function redactUrl(text: string, url?: string): string {
  let masked = text;
  if (url) {
    try {
      const parsed = new URL(url);
      if (parsed.username || parsed.password) {
        parsed.username = '***';
        parsed.password = '';
        masked = masked.split(url).join(parsed.toString());
      }
    } catch {
      // Not a URL (a path, or scp-like user@host:path): nothing secret to mask in it.
    }
  }
  return masked.replace(/([a-z][a-z0-9+.-]*:\/\/)[^/@\s]+@/gi, '$1***@');
}
