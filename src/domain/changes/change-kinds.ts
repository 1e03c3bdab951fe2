import type { ChangeKind } from '../../gitops/render/change-payloads.ts';

/**
 * The kinds of change the service writes to the GitOps repository and how each reaches the
 * base branch. Each kind's payload is the renderer's input (gitops/render/change-payloads.ts,
 * the one contract the producers here and the publisher share); the policies are defined here.
 */
export { CHANGE_KINDS, type ChangeKind } from '../../gitops/render/change-payloads.ts';

/** The kinds that belong to one instance (instance_id is set). */
export const INSTANCE_CHANGE_KINDS = ['instance.create', 'instance.update', 'instance.delete'] as const;
export type InstanceChangeKind = (typeof INSTANCE_CHANGE_KINDS)[number];

export function isInstanceChangeKind(kind: ChangeKind): kind is InstanceChangeKind {
  return (INSTANCE_CHANGE_KINDS as readonly string[]).includes(kind);
}

/**
 * `pull-request`: a person merges; `auto-merge`: the service merges as soon as the backend lets
 * it; `direct`: the commit is put on the base branch without a pull request.
 */
export const MERGE_POLICIES = ['pull-request', 'auto-merge', 'direct'] as const;

/**
 * How a batch shows in Git (GITOPS_BATCH_COMMITS). `per-org-commits`: one pull request, one
 * commit per org in it, so `git log -- <org dir>` shows nothing of another org;
 * `per-org-pull-requests`: a batch holds one org's changes only; `shared`: one commit for the
 * whole batch (the fewest GitHub writes; the audit API still shows each org only its own).
 */
export const BATCH_COMMIT_MODES = ['per-org-commits', 'per-org-pull-requests', 'shared'] as const;
export type BatchCommitMode = (typeof BATCH_COMMIT_MODES)[number];
export type MergePolicy = (typeof MERGE_POLICIES)[number];

/** One merge policy for every kind of change, or a default with exceptions per kind. */
export type MergePolicies = MergePolicy | ({ default: MergePolicy } & Partial<Record<ChangeKind, MergePolicy>>);

export function mergePolicyFor(policies: MergePolicies, kind: ChangeKind): MergePolicy {
  return typeof policies === 'string' ? policies : (policies[kind] ?? policies.default);
}

/** Every branch the service writes starts with this (the remote pusher may force-move them). */
export const BATCH_BRANCH_PREFIX = 'control-plane/';

export function batchBranch(batchId: string): string {
  return `${BATCH_BRANCH_PREFIX}batch-${batchId}`;
}

/** Who the service is when it acts on its own (proposals, merges it was asked to do by policy). */
export const SERVICE_ACTOR = 'control-plane';
