import { Type, type Static } from '@sinclair/typebox';
import type { Sequelize } from 'sequelize';
import { ValidationError } from '../errors.ts';
import { createAjv, toFieldErrors, type ValidateFunction } from '../validation.ts';
import { recordPullRequestFate, type ChangeOutcome, type FateCause } from '../domain/changes/pull-request-fate.ts';
import { processDelivery } from './webhook-deliveries.ts';
import type { BaseBranchMove } from '../domain/convergence/base-branch-convergence.ts';
import { commitsFromPushPayload } from '../gitops/github/push-commits.ts';

/** The parts of GitHub's payloads this service reads; everything else is allowed and ignored. */
const PullRequestPayload = Type.Object({
  action: Type.String(),
  number: Type.Integer({ minimum: 1 }),
  pull_request: Type.Object({
    number: Type.Integer({ minimum: 1 }),
    merged: Type.Union([Type.Boolean(), Type.Null()]),
    merge_commit_sha: Type.Union([Type.String(), Type.Null()]),
    html_url: Type.String(),
    head: Type.Object({ ref: Type.String(), sha: Type.String() }),
    base: Type.Object({ ref: Type.String() }),
  }),
});

const PushPayload = Type.Object({
  ref: Type.String(),
  after: Type.String(),
  deleted: Type.Optional(Type.Boolean()),
  commits: Type.Array(Type.Object({ id: Type.String() })),
  head_commit: Type.Union([Type.Object({ id: Type.String() }), Type.Null()]),
});

export interface GithubEvent {
  /** X-GitHub-Delivery: the same for a redelivery. */
  id: string;
  /** X-GitHub-Event. */
  name: string;
  payload: unknown;
}

export type GithubEventResult =
  | { status: 'ignored'; reason: string }
  | { status: 'processed'; duplicate: boolean; changes: ChangeOutcome[] };

export interface GithubEventDeps {
  sequelize: Sequelize;
  /** The branch Argo CD watches: only PRs into it and pushes to it matter. */
  baseBranch: string;
  /**
   * Reads the base branch back after it moved (convergence). Errors are the caller's to log:
   * the delivery is recorded, and the reconciler converges later whatever happens here.
   */
  converge?: (move?: BaseBranchMove) => Promise<unknown>;
  /** Told when reading main back failed (the delivery is recorded; the reconciler converges later). */
  onConvergeError?: (error: unknown) => void;
}

const ajv = createAjv({ useDefaults: false });
const validatePullRequest = ajv.compile<Static<typeof PullRequestPayload>>(PullRequestPayload);
const validatePush = ajv.compile<Static<typeof PushPayload>>(PushPayload);

/**
 * Applies one verified GitHub delivery. Verification is the caller's (the route's) job, so
 * tests and replays call this directly. Events without an effect are acknowledged and not
 * recorded; the others run once per delivery id (see processDelivery).
 */
export async function receiveGithubEvent(deps: GithubEventDeps, event: GithubEvent): Promise<GithubEventResult> {
  if (event.name === 'pull_request') {
    const payload = parse(validatePullRequest, event.payload);
    const pr = payload.pull_request;
    if (pr.base.ref !== deps.baseBranch) return { status: 'ignored', reason: `pull request into ${pr.base.ref}, not ${deps.baseBranch}` };
    if (payload.action !== 'closed' && payload.action !== 'reopened') return { status: 'ignored', reason: `pull_request.${payload.action} has no effect` };
    const result = await run(deps, event, `pull_request.${payload.action}`, async (tx) => {
      const cause: FateCause = {
        cause: `github.pull_request.${payload.action}${payload.action === 'closed' && pr.merged ? '.merged' : ''}`,
        actor: 'github',
        deliveryId: event.id,
        detail: { pullRequest: pr.number, url: pr.html_url },
      };
      const state = payload.action === 'reopened' ? 'open' : pr.merged && pr.merge_commit_sha ? 'merged' : 'closed';
      return recordPullRequestFate(deps.sequelize, tx, { number: pr.number, branch: pr.head.ref, state, mergeCommitSha: pr.merge_commit_sha ?? undefined }, cause);
    });
    if (pr.merged) await convergeAfter(deps);
    return result;
  }

  if (event.name === 'push') {
    const payload = parse(validatePush, event.payload);
    if (payload.ref !== `refs/heads/${deps.baseBranch}`) return { status: 'ignored', reason: `push to ${payload.ref}, not the base branch` };
    if (payload.deleted) return { status: 'ignored', reason: 'the base branch was deleted' };
    // What a push changed is read back from the repository (convergence): the push itself
    // only says that main moved. Recorded once per delivery like every other event.
    const result = await run(deps, event, 'push', async () => []);
    // The delivery's own commits, where GitHub's payload is complete for them (no call to compare).
    const commits = commitsFromPushPayload(event.payload);
    const before = (event.payload as { before?: unknown }).before;
    await convergeAfter(deps, commits && typeof before === 'string' ? { before, after: payload.after, commits } : undefined);
    return result;
  }

  return { status: 'ignored', reason: `event ${event.name} has no effect` };
}

/**
 * Reads main back after a delivery that moved it. A failure there (GitHub down, a lost race with
 * another replica's read) does not fail the delivery: it is recorded, GitHub would not resend it,
 * and the next read (another delivery, the reconciler) converges from the same recorded head.
 */
async function convergeAfter(deps: GithubEventDeps, move?: BaseBranchMove): Promise<void> {
  try {
    await deps.converge?.(move);
  } catch (error) {
    deps.onConvergeError?.(error);
  }
}

async function run(
  deps: GithubEventDeps,
  event: GithubEvent,
  name: string,
  effect: Parameters<typeof processDelivery<ChangeOutcome[]>>[2],
): Promise<GithubEventResult> {
  const result = await processDelivery(deps.sequelize, { source: 'github', key: event.id, event: name }, effect);
  return result.duplicate
    ? { status: 'processed', duplicate: true, changes: (result.outcome as ChangeOutcome[] | null) ?? [] }
    : { status: 'processed', duplicate: false, changes: result.outcome };
}

function parse<T>(validate: ValidateFunction<T>, payload: unknown): T {
  if (!validate(payload)) throw new ValidationError(toFieldErrors('body', validate.errors), 'The GitHub payload lacks fields this event needs.');
  return payload;
}
