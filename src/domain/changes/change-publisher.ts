import { renderChange } from '../../gitops/render/change-renderer.ts';
import { isSlug, tenantDir, type TenantLayout } from '../../gitops/tenant-paths.ts';
import { SERVICE_ACTOR, type ChangeKind, type MergePolicy } from './change-kinds.ts';
import { parseChange, type ParsedChange } from '../../gitops/render/change-payloads.ts';
import type { TemplateCatalog } from '../../gitops/render/template-catalog.ts';
import { BranchMovedError, mergeFailureOutcome, PullRequestNotMergeableError, type FileChange, type GitopsRepository, type MergeAttemptOutcome, type PullRequest } from '../../gitops/repository.ts';

/** One claimed change request, as the publisher needs it. */
export interface ChangeToPublish {
  id: string;
  kind: ChangeKind;
  payload: unknown;
  instanceId: string | undefined;
  requestedBy: string;
  /** The requester as a person (users: display name and email), when the service knows it. */
  requester?: { name: string | undefined; email: string | undefined };
  /** Why it was asked for (the request's `reason`), or why the service proposes it. */
  reason?: string;
  /** 1 on the first claim of the batch: nothing can exist in Git yet, so nothing is looked up. */
  attempts?: number;
  /** Where the change's org sits in the repository now (organizations.tenant_layout); changes of no org: bucketed, unused. */
  layout: TenantLayout;
}


export interface PublishInput {
  batchId: string;
  branch: string;
  mergePolicy: MergePolicy;
  changes: ChangeToPublish[];
  /** `per-org` (default): one commit per org, in the order the orgs first appear; `shared`: one commit. */
  commits?: 'per-org' | 'shared';
}

/** A change that cannot be rendered: terminal for that change alone. */
export interface RejectedChange {
  id: string;
  reason: string;
}

export interface PublishResult {
  /** Changes that made it into the commit, with the files each one wrote or removed and the commit that holds them. */
  published: { id: string; files: FileChange[]; commitSha?: string }[];
  rejected: RejectedChange[];
  /** Undefined when every change was rejected. */
  commitSha: string | undefined;
  pullRequest: PullRequest | undefined;
  /** Set when the commit is on the base branch (direct, or auto-merge that merged). */
  mergeCommitSha: string | undefined;
  /** Auto-merge that could not merge yet; the pull request stays open. */
  mergeError: string | undefined;
  /** How the auto-merge attempt ended; undefined when none was made. */
  autoMerge?: MergeAttemptOutcome;
}

/** What an auto-merge that did not merge records on its changes (last_error, GET /changes/:id). */
export function autoMergeError(error: unknown): string {
  const message = (error as Error).message;
  if (error instanceof PullRequestNotMergeableError && error.reason === 'conflict') {
    return `auto-merge waits for a person: ${message}; resolve the conflict on the branch (the service merges it once it is mergeable) or close the pull request`;
  }
  return `auto-merge will be retried: ${message}`;
}

/**
 * Turns a batch of change requests into one commit on a deterministic branch and then, per
 * merge policy, a pull request or a fast-forward of the base branch. Every step checks what
 * an earlier attempt already did (branch exists → reuse its commit; PR exists → adopt it;
 * commit already on the base branch → done), so running it again after a crash at any point
 * converges on one commit and one pull request.
 */
export async function publishChanges(repository: GitopsRepository, catalog: TemplateCatalog, input: PublishInput): Promise<PublishResult> {
  const published: PublishResult['published'] = [];
  const rejected: RejectedChange[] = [];
  const parsed: { change: ChangeToPublish; parsed: ParsedChange }[] = [];
  // A relayout moves what main holds: read it where the commit will start from.
  const onMain = await flatDirectoriesOnMain(repository, input.changes);
  for (const change of input.changes) {
    // Rendering is synchronous (a few hundred µs a change): give the requests waiting on this
    // event loop a turn between changes rather than one pause as long as the whole batch.
    await new Promise<void>((resolve) => setImmediate(resolve));
    try {
      const parsedChange = parseChange(change.kind, change.payload);
      published.push({ id: change.id, files: renderChange(catalog, parsedChange, { instanceId: change.instanceId, layout: change.layout, onMain }) });
      parsed.push({ change, parsed: parsedChange });
    } catch (error) {
      rejected.push({ id: change.id, reason: (error as Error).message });
    }
  }
  const result: PublishResult = { published, rejected, commitSha: undefined, pullRequest: undefined, mergeCommitSha: undefined, mergeError: undefined };
  if (published.length === 0) return result;

  // One commit per org (or one for all): each a step on top of the one before, the branch at the last.
  const steps = commitSteps(input, parsed, published);
  // A retried batch may have created its branch already; a first attempt cannot have (and a
  // branch that exists anyway is adopted by createBranch).
  const firstAttempt = input.changes.every((c) => c.attempts === 1);
  let tip = firstAttempt ? undefined : await repository.getBranch(input.branch);
  if (!tip) {
    const base = await requireBranch(repository, repository.baseBranch);
    const chain = await commitChain(repository, base, steps);
    tip = await repository.createBranch(input.branch, chain.at(-1)!);
    // Each change names its own org's commit (an adopted branch, on a retry, names its tip).
    if (tip === chain.at(-1)) recordStepCommits(published, steps, chain);
  }

  if (input.mergePolicy === 'direct') {
    const landed = await landDirectly(repository, input.branch, tip, steps);
    result.commitSha = result.mergeCommitSha = landed.tip;
    // Re-applied on a base that moved: the commits that landed are new ones.
    if (landed.chain) recordStepCommits(published, steps, landed.chain);
    return result;
  }
  result.commitSha = tip;
  result.pullRequest = await repository.openPullRequest({ branch: input.branch, title: commitTitle(parsed), body: pullRequestBody(input, parsed, published) });
  if (input.mergePolicy === 'auto-merge' && result.pullRequest.state === 'open') {
    try {
      result.pullRequest = await repository.mergePullRequest(result.pullRequest.number, { mergedBy: POLICY_MERGER });
      result.autoMerge = 'merged';
    } catch (error) {
      // Not fatal: the pull request is open, and the PR reconciler keeps trying to merge it.
      result.mergeError = autoMergeError(error);
      result.autoMerge = mergeFailureOutcome(error);
    }
  }
  if (result.pullRequest.state === 'merged') result.mergeCommitSha = result.pullRequest.mergeCommitSha;
  return result;
}

/**
 * Puts the batch's commit on the base branch as a fast-forward. When the base moved since the
 * commit was made, the same changes are re-applied on the new base (and the batch branch moved
 * to that commit first, so a crash in between is still recognised on the next attempt).
 */
async function landDirectly(repository: GitopsRepository, branch: string, first: string, steps: CommitStep[]): Promise<{ tip: string; chain?: string[] }> {
  let tip = first;
  let chain: string[] | undefined;
  for (let attempt = 0; attempt < 10; attempt += 1) {
    const base = await requireBranch(repository, repository.baseBranch);
    if (await repository.isAncestor(tip, base)) return { tip, ...(chain ? { chain } : {}) };
    try {
      if (!(await repository.isAncestor(base, tip))) {
        const rebased = await commitChain(repository, base, steps);
        await repository.updateBranch(branch, rebased.at(-1)!, { expected: tip, force: true });
        tip = rebased.at(-1)!;
        chain = rebased;
      }
      await repository.updateBranch(repository.baseBranch, tip, { expected: base });
      return { tip, ...(chain ? { chain } : {}) };
    } catch (error) {
      if (!(error instanceof BranchMovedError)) throw error;
      // Someone else moved the base (or our branch, in a concurrent retry): re-read and go again.
      tip = (await repository.getBranch(branch)) ?? tip;
    }
  }
  throw new BranchMovedError(repository.baseBranch, 'it kept moving while landing the change');
}

/** One commit of a batch: its files and message, and the changes it holds. */
interface CommitStep {
  ids: string[];
  changes: FileChange[];
  message: string;
}

/**
 * The batch's commits: with `per-org`, one per org in the order the orgs first appear in the
 * batch (changes of no org, a bootstrap or a relayout, are an org of their own), each with its
 * own title and only its changes' trailer groups; with `shared`, one.
 */
function commitSteps(input: PublishInput, parsed: { change: ChangeToPublish; parsed: ParsedChange }[], published: PublishResult['published']): CommitStep[] {
  const groups = new Map<string, { change: ChangeToPublish; parsed: ParsedChange }[]>();
  for (const entry of parsed) {
    const key = input.commits === 'shared' ? '' : (orgOf(entry.parsed) ?? '');
    (groups.get(key) ?? groups.set(key, []).get(key)!).push(entry);
  }
  const files = new Map(published.map((p) => [p.id, p.files]));
  return [...groups.values()].map((group) => ({
    ids: group.map((g) => g.change.id),
    changes: group.flatMap((g) => files.get(g.change.id) ?? []),
    message: commitMessage(input, group),
  }));
}

/** The steps as commits on `base`, one after another; returns them in order. */
async function commitChain(repository: GitopsRepository, base: string, steps: CommitStep[]): Promise<string[]> {
  const chain: string[] = [];
  for (const step of steps) chain.push(await repository.createCommit({ parent: chain.at(-1) ?? base, changes: step.changes, message: step.message }));
  return chain;
}

function recordStepCommits(published: PublishResult['published'], steps: CommitStep[], chain: string[]): void {
  steps.forEach((step, i) => {
    for (const id of step.ids) published.find((p) => p.id === id)!.commitSha = chain[i];
  });
}

/** The flat directories of the orgs a tenants.relayout in the batch moves, as main holds them now. */
async function flatDirectoriesOnMain(repository: GitopsRepository, changes: ChangeToPublish[]): Promise<Map<string, Map<string, string>>> {
  const orgs = changes.flatMap((c) => (c.kind === 'tenants.relayout' ? ((c.payload as { orgs?: unknown }).orgs ?? []) : [])).filter((o): o is string => typeof o === 'string' && isSlug(o, 'org'));
  if (orgs.length === 0) return new Map();
  return repository.readDirectories(await requireBranch(repository, repository.baseBranch), orgs.map((org) => tenantDir(org, 'flat')));
}

async function requireBranch(repository: GitopsRepository, branch: string): Promise<string> {
  const sha = await repository.getBranch(branch);
  if (!sha) throw new BranchMovedError(branch, 'the branch does not exist');
  return sha;
}

function describe(parsed: ParsedChange): string {
  switch (parsed.kind) {
    case 'workspace.create':
      return `Add workspace ${parsed.payload.org}`;
    case 'instance.create':
      return `Create ${parsed.payload.offering} ${parsed.payload.version} instance ${parsed.payload.instanceName} in ${parsed.payload.org}`;
    case 'instance.update':
      return `Update instance ${parsed.payload.instanceName} in ${parsed.payload.org} to ${parsed.payload.offering} ${parsed.payload.version}`;
    case 'instance.delete':
      return `Delete instance ${parsed.payload.instanceName} in ${parsed.payload.org}`;
    case 'platform.bootstrap':
      return `Deploy the control plane (${parsed.payload.image})`;
    case 'tenants.relayout':
      return `Move ${parsed.payload.orgs.length} workspace${parsed.payload.orgs.length === 1 ? '' : 's'} to tenants/_<bucket>/<org>/`;
  }
}

function orgOf(parsed: ParsedChange): string | undefined {
  return parsed.kind === 'platform.bootstrap' || parsed.kind === 'tenants.relayout' ? undefined : parsed.payload.org;
}

export function commitTitle(parsed: { parsed: ParsedChange }[]): string {
  if (parsed.length === 1) return describe(parsed[0]!.parsed);
  const orgs = [...new Set(parsed.map((p) => orgOf(p.parsed)).filter(Boolean))].sort();
  return `${parsed.length} changes for ${orgs.slice(0, 3).join(', ')}${orgs.length > 3 ? `, and ${orgs.length - 3} more` : ''}`;
}

/**
 * What an update changes, from what main held when it was asked for: the version and each
 * parameter from → to (a sensitive one only named), e.g. "version 1.0.0 → 2.0.0; size: small →
 * large". Undefined when the update does not say what main held.
 */
export function whatChanges(parsed: ParsedChange): string | undefined {
  if (parsed.kind !== 'instance.update' || !parsed.payload.previous) return undefined;
  const { previous, version, parameters } = parsed.payload;
  const shown = (value: unknown) => oneLine(JSON.stringify(value) ?? 'unset').slice(0, 100);
  const parts: string[] = [];
  if (previous.version !== version) parts.push(`version ${previous.version} → ${version}`);
  for (const name of [...new Set([...Object.keys(previous.parameters), ...Object.keys(parameters)])].sort()) {
    const before = previous.parameters[name];
    const after = parameters[name];
    if (JSON.stringify(before) === JSON.stringify(after)) continue;
    parts.push(previous.sensitive.includes(name) ? `${name}: changed (sensitive)` : `${name}: ${shown(before)} → ${shown(after)}`);
  }
  return parts.length > 0 ? parts.join('; ') : 'nothing but a re-render';
}

/** Title, one line per change (with what an update changes), then trailers (one group per change, in the same order). */
function commitMessage(input: PublishInput, parsed: { change: ChangeToPublish; parsed: ParsedChange }[]): string {
  const changes = parsed.map((p) => whatChanges(p.parsed));
  const lines = parsed.length > 1 ? parsed.map((p, i) => `- ${describe(p.parsed)}${changes[i] ? `: ${changes[i]}` : ''}`) : changes[0] ? [`Changes: ${changes[0]}.`] : [];
  const trailers: string[] = [`Batch-Id: ${input.batchId}`];
  for (const { change, parsed: p } of parsed) {
    trailers.push(`Change-Id: ${change.id}`);
    if (change.instanceId) trailers.push(`Instance-Id: ${change.instanceId}`);
    const org = orgOf(p);
    if (org) trailers.push(`Org: ${org}`);
    if (p.kind === 'instance.create' || p.kind === 'instance.update') trailers.push(`Offering: ${p.payload.offering}/${p.payload.version}`);
    if (p.kind === 'instance.delete') trailers.push(`Offering: ${p.payload.offering}`);
    trailers.push(`Requested-By: ${requesterOf(change)}`);
    if (change.reason) trailers.push(`Reason: ${oneLine(change.reason)}`);
  }
  return [commitTitle(parsed), '', ...(lines.length ? [...lines, ''] : []), ...trailers, ''].join('\n');
}

/** `Name <email> (subject)`, as far as the service knows the person; the subject alone otherwise. */
function requesterOf(change: Pick<ChangeToPublish, 'requestedBy' | 'requester'>): string {
  return personLine(change.requestedBy, change.requester);
}

/** A person as the trailers name them: "Name <email> (subject)", or "subject <email>" without a name. */
export function personLine(subject: string, person?: { name: string | undefined; email: string | undefined }): string {
  const name = person?.name && person.name !== subject ? oneLine(person.name) : undefined;
  const email = person?.email ? ` <${oneLine(person.email).replace(/[<>]/g, '')}>` : '';
  return name ? `${name}${email} (${oneLine(subject)})` : `${oneLine(subject)}${email}`;
}

/** Who a merge the service does by policy is by: the service, and why. */
export const POLICY_MERGER = `${SERVICE_ACTOR} (merge policy auto-merge)`;

function oneLine(text: string): string {
  return text.replace(/[\r\n]+/g, ' ');
}

function pullRequestBody(input: PublishInput, parsed: { change: ChangeToPublish; parsed: ParsedChange }[], published: PublishResult['published']): string {
  const cell = (text: string) => oneLine(text).replace(/\|/g, '\\|');
  const rows = parsed.map(({ change, parsed: p }) => {
    const offering = p.kind === 'instance.create' || p.kind === 'instance.update' ? `${p.payload.offering} ${p.payload.version}` : p.kind === 'instance.delete' ? p.payload.offering : '';
    const instance = p.kind.startsWith('instance.') ? (p.payload as { instanceName: string }).instanceName : '';
    return `| ${change.kind} | ${cell(orgOf(p) ?? '')} | ${cell(instance)} | ${cell(offering)} | ${cell(requesterOf(change))}${change.reason ? `: ${cell(change.reason)}` : ''} | \`${change.id}\` |`;
  });
  const files = published.flatMap((p) => p.files).map((f) => `| \`${f.path}\` | ${'delete' in f ? 'removed' : 'written'} |`);
  const head = [`Opened by the control plane (batch \`${input.batchId}\`, merge policy \`${input.mergePolicy}\`).`, ''];
  // GitHub refuses a body over 65,536 characters (422 "body is too long"): rows are listed
  // while they fit in PR_BODY_BUDGET, changes first (each is someone's request), then files;
  // what is left out is counted, and the commit holds all of it (files, Change-Id trailers).
  let budget = PR_BODY_BUDGET - head.join('\n').length - 400;
  const fit = (lines: string[], noun: string, where: string): string[] => {
    const kept: string[] = [];
    for (const line of lines) {
      if (line.length + 1 > budget) break;
      kept.push(line);
      budget -= line.length + 1;
    }
    const left = lines.length - kept.length;
    return left === 0 ? kept : [...kept, '', `… and ${left} more ${noun}${left === 1 ? '' : 's'} not listed here (${where}).`];
  };
  const changeRows = fit(rows, 'change', 'their Change-Id trailers are in the commit message');
  const fileRows = fit(files, 'file', 'the commit holds every file');
  return [
    ...head,
    '| Change | Tenant | Instance | Offering | Requested by | Change id |',
    '| --- | --- | --- | --- | --- | --- |',
    ...changeRows,
    '',
    '| File | |',
    '| --- | --- |',
    ...fileRows,
    '',
  ].join('\n');
}

/** What a pull request body may hold: GitHub's 65,536 characters, less a margin for GitHub's own counting. */
export const PR_BODY_BUDGET = 60_000;
