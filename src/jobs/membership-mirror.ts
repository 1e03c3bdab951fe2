import { randomUUID } from 'node:crypto';
import type { Sequelize } from 'sequelize';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics.ts';
import type { KeycloakDirectory } from '../keycloak/keycloak-directory.ts';
import { claimMembershipOp, pendingMembershipOps, recordMembershipOpDone, recordMembershipOpRetry } from '../domain/membership-mirror.ts';
import { applyMembershipOp, reconcileMemberships, type MembershipReconcileResult } from '../domain/membership-sync.ts';
import type { BackgroundTask } from './background-task.ts';
import { backoffMs } from './change-worker.ts';
import { runAsLeader } from './leader-lock.ts';
import { createPeriodicTask } from './periodic-task.ts';

/** Arbitrary but fixed: every replica contends for it; the holder talks to Keycloak. */
export const MEMBERSHIP_MIRROR_LOCK_KEY = 0x6370_6b63; // "cpkc"

export interface MembershipMirrorOptions {
  sequelize: Sequelize;
  directory: KeycloakDirectory;
  logger: Logger;
  metrics?: Pick<Metrics, 'keycloakMirrorPending' | 'keycloakMirrorOps' | 'keycloakMirrorDriftCorrected'>;
  /** Sleep between passes over the outbox. */
  pollMs: number;
  reconcileIntervalMs: number;
  /** Longer than a pass over one operation can take (a few requests of KEYCLOAK_TIMEOUT_MS each). */
  leaseMs: number;
  /** Wait before the attempt after `attempt` failed ones (default: change-worker's backoffMs, 1 s doubling to 5 min). */
  backoff?: (attempt: number) => number;
  /** Most operations one pass applies before it lets the leader lock go. */
  maxPerPass?: number;
  workerId?: string;
  now?: () => number;
}

export interface DrainResult {
  applied: number;
  unknownUsers: number;
  retried: number;
}

/**
 * The membership mirror, on the leader replica only: drains keycloak_membership_ops (each
 * operation applied through applyMembershipOp; a Keycloak failure leaves it pending with
 * backoff, never lost and never blocking the API, which only writes the outbox), and every
 * reconcileIntervalMs corrects drift made in Keycloak.
 */
export function createMembershipMirror(options: MembershipMirrorOptions): BackgroundTask & {
  drainOnce(): Promise<DrainResult>;
  reconcileOnce(): Promise<MembershipReconcileResult>;
} {
  const workerId = options.workerId ?? `keycloak-mirror-${randomUUID()}`;
  const log = options.logger.child({ task: 'membership-mirror', realm: options.directory.realm });
  const backoff = options.backoff ?? backoffMs;
  const now = options.now ?? Date.now;
  const deps = { sequelize: options.sequelize, directory: options.directory };
  let reconciledAt: number | undefined;
  // Set by stop(): the pass in flight ends after its current operation (SIGTERM has a deadline).
  let stopping = false;

  async function drainOnce(): Promise<DrainResult> {
    const result: DrainResult = { applied: 0, unknownUsers: 0, retried: 0 };
    for (let n = 0; n < (options.maxPerPass ?? 200) && !stopping; n++) {
      const op = await claimMembershipOp(options.sequelize, { workerId, leaseMs: options.leaseMs });
      if (!op) break;
      try {
        const outcome = await applyMembershipOp(deps, op);
        await recordMembershipOpDone(options.sequelize, op, workerId, outcome);
        if (outcome === 'applied') result.applied += 1;
        else {
          result.unknownUsers += 1;
          log.warn({ org: op.orgSlug, subject: op.subject }, 'Keycloak has no user with this subject: the membership is not mirrored');
        }
        options.metrics?.keycloakMirrorOps.inc({ result: outcome === 'applied' ? 'applied' : 'unknown_user' });
      } catch (error) {
        const delay = backoff(op.attempts);
        await recordMembershipOpRetry(options.sequelize, op, workerId, (error as Error).message, delay);
        result.retried += 1;
        options.metrics?.keycloakMirrorOps.inc({ result: 'retried' });
        log.warn({ err: error, org: op.orgSlug, subject: op.subject, attempts: op.attempts, retryInMs: delay }, 'membership change not mirrored yet; it will be retried');
        // Keycloak is failing: the other operations wait for their own next attempt.
        break;
      }
    }
    options.metrics?.keycloakMirrorPending.set(await pendingMembershipOps(options.sequelize));
    return result;
  }

  async function reconcileOnce(): Promise<MembershipReconcileResult> {
    const result = await reconcileMemberships(deps);
    options.metrics?.keycloakMirrorDriftCorrected.inc(result.corrected.length);
    if (result.corrected.length > 0) log.info({ corrected: result.corrected }, 'Keycloak memberships changed outside the API: queued back to the database state');
    if (result.failed.length > 0) log.warn({ failed: result.failed }, 'could not read Keycloak groups of some orgs; the next round tries again');
    return result;
  }

  const periodic = createPeriodicTask({
    name: 'membership-mirror',
    intervalMs: options.pollMs,
    logger: log,
    run: async () => {
      await runAsLeader(options.sequelize, MEMBERSHIP_MIRROR_LOCK_KEY, async () => {
        await drainOnce();
        if (!stopping && (reconciledAt === undefined || now() - reconciledAt >= options.reconcileIntervalMs)) {
          reconciledAt = now();
          // What the reconciler queued is applied right away.
          if ((await reconcileOnce()).corrected.length > 0) await drainOnce();
        }
      });
    },
  });
  return {
    name: periodic.name,
    start: () => {
      stopping = false;
      periodic.start();
    },
    stop: () => {
      stopping = true;
      return periodic.stop();
    },
    drainOnce,
    reconcileOnce,
  };
}
