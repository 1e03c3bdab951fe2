import pg from 'pg';
import { runGit } from '../bench/synthetic-repository.ts';

export interface AuditResult {
  /** Problems found, one line each; empty when every rule holds. */
  problems: string[];
  instances: number;
  commits: number;
  pullRequests: number;
  ledgerTotal: bigint;
}

/**
 * The rules a crash or a race must never break, checked against the database and the
 * repository after the fact:
 * - every accepted instance exists once, with exactly one instance.create change, committed;
 * - that change's Change-Id is in exactly one commit reachable from any ref;
 * - no two pull requests for one branch, and no branch with two open pull requests;
 * - at most one billing hold per instance, and the ledger's entries sum to zero.
 */
export async function auditExactlyOnce(input: { databaseUrl: string; gitDir: string; accepted: string[]; uncertain: string[]; org: string }): Promise<AuditResult> {
  const problems: string[] = [];
  const client = new pg.Client({ connectionString: input.databaseUrl });
  await client.connect();
  try {
    const { rows: instances } = await client.query<{ id: string; name: string; state: string }>(
      `SELECT i.id, i.name, i.state FROM instances i JOIN organizations o ON o.id = i.organization_id WHERE o.slug = $1`,
      [input.org],
    );
    const byName = new Map<string, { id: string; name: string }[]>();
    for (const row of instances) byName.set(row.name, [...(byName.get(row.name) ?? []), row]);
    for (const name of input.accepted) {
      const rows = byName.get(name) ?? [];
      if (rows.length !== 1) problems.push(`accepted instance ${name} exists ${rows.length} times`);
    }
    for (const name of input.uncertain) {
      const rows = byName.get(name) ?? [];
      if (rows.length > 1) problems.push(`instance ${name} (answer lost in the crash) exists ${rows.length} times`);
    }
    const known = new Set([...input.accepted, ...input.uncertain]);
    for (const name of byName.keys()) if (!known.has(name)) problems.push(`instance ${name} exists but was never requested`);

    const { rows: changes } = await client.query<{ id: string; instance_id: string; status: string; commit_sha: string | null; branch: string | null }>(
      `SELECT c.id, c.instance_id, c.status, c.commit_sha, c.branch FROM change_requests c
       JOIN organizations o ON o.id = c.organization_id WHERE o.slug = $1 AND c.kind = 'instance.create'`,
      [input.org],
    );
    const changesOf = new Map<string, typeof changes>();
    for (const change of changes) changesOf.set(change.instance_id, [...(changesOf.get(change.instance_id) ?? []), change]);
    const commitsOfChange = await changeIdsInCommits(input.gitDir);
    for (const instance of instances) {
      const own = changesOf.get(instance.id) ?? [];
      if (own.length !== 1) {
        problems.push(`instance ${instance.name} has ${own.length} create changes`);
        continue;
      }
      const change = own[0]!;
      if (!change.commit_sha || change.status === 'pending' || change.status === 'failed') {
        problems.push(`change ${change.id} of ${instance.name} is ${change.status} with commit ${change.commit_sha ?? 'none'}`);
      }
      const commits = commitsOfChange.get(change.id)?.size ?? 0;
      if (commits !== 1) problems.push(`change ${change.id} of ${instance.name} is in ${commits} commits reachable from refs`);
    }

    const { rows: duplicatePrs } = await client.query<{ branch: string; n: number }>(
      `SELECT branch, count(*)::int AS n FROM local_pull_requests GROUP BY branch HAVING count(*) > 1`,
    );
    for (const row of duplicatePrs) problems.push(`branch ${row.branch} has ${row.n} pull requests`);
    const { rows: prCount } = await client.query<{ n: number }>('SELECT count(*)::int AS n FROM local_pull_requests');

    const { rows: holds } = await client.query<{ reference: string; n: number }>(
      `SELECT reference, count(*)::int AS n FROM billing_authorizations WHERE reference = ANY($1::text[]) GROUP BY reference HAVING count(*) > 1`,
      [instances.map((i) => i.id)],
    );
    for (const row of holds) problems.push(`instance ${row.reference} has ${row.n} billing holds`);
    const { rows: total } = await client.query<{ total: string | null }>('SELECT sum(amount)::text AS total FROM ledger_entries');
    const ledgerTotal = BigInt(total[0]?.total ?? '0');
    if (ledgerTotal !== 0n) problems.push(`ledger entries sum to ${ledgerTotal}, not 0`);
    const { rows: wallets } = await client.query<{ id: string; balance: string; entries: string }>(
      `SELECT a.id, a.balance::text, coalesce((SELECT sum(e.amount) FROM ledger_entries e WHERE e.account_id = a.id), 0)::text AS entries
       FROM ledger_accounts a WHERE a.kind = 'wallet'`,
    );
    for (const wallet of wallets) if (wallet.balance !== wallet.entries) problems.push(`wallet ${wallet.id} balance ${wallet.balance} ≠ its entries ${wallet.entries}`);

    const allCommits = new Set([...commitsOfChange.values()].flatMap((s) => [...s]));
    return { problems, instances: instances.length, commits: allCommits.size, pullRequests: prCount[0]!.n, ledgerTotal };
  } finally {
    await client.end();
  }
}

/** Change-Id trailer → the commits (reachable from any ref) that carry it. */
async function changeIdsInCommits(gitDir: string): Promise<Map<string, Set<string>>> {
  const log = await runGit(['--git-dir', gitDir, 'log', '--all', '--format=%H%n%B%x00']);
  const map = new Map<string, Set<string>>();
  for (const entry of log.split('\0')) {
    const [sha, ...body] = entry.trim().split('\n');
    if (!sha) continue;
    for (const line of body) {
      const match = /^Change-Id: (\S+)$/.exec(line);
      if (match) map.set(match[1]!, (map.get(match[1]!) ?? new Set()).add(sha));
    }
  }
  return map;
}

/** Waits until no change is pending or leased, bounded; returns how many are still pending. */
export async function waitForDrainedQueue(databaseUrl: string, timeoutMs: number): Promise<number> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const { rows } = await client.query<{ n: number }>("SELECT count(*)::int AS n FROM change_requests WHERE status = 'pending'");
      if (rows[0]!.n === 0 || Date.now() > deadline) return rows[0]!.n;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  } finally {
    await client.end();
  }
}
