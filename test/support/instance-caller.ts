import type { Caller } from './scratch-service.ts';

export interface PreparedCaller {
  /** Slug of the caller's workspace. */
  org: string;
  /** An offering the catalog serves. */
  offering: string;
  /** Wallet ids of the workspace (empty without billing). */
  wallets: string[];
}

async function json<T>(response: Response, what: string): Promise<T> {
  if (!response.ok) throw new Error(`${what} answered ${response.status}: ${await response.text()}`);
  return (await response.json()) as T;
}

/**
 * Through the public API only: the caller's workspace (POST /orgs/auto), an offering to
 * request, and (when billing exists) `credit` minor units on each of its wallets, added by a
 * platform admin, so holds never run out during a load run.
 */
export async function prepareInstanceCaller(baseUrl: string, caller: Caller, admin: Caller, credit: number): Promise<PreparedCaller> {
  const workspace = await json<{ slug: string; wallets?: { id: string }[]; walletIds?: string[] }>(
    await fetch(`${baseUrl}/orgs/auto`, { method: 'POST', headers: { ...caller.headers, 'content-type': 'application/json' }, body: '{}' }),
    'POST /orgs/auto',
  );
  const org = await json<{ wallets?: { id: string }[]; walletIds?: string[] }>(await fetch(`${baseUrl}/orgs/${workspace.slug}`, { headers: caller.headers }), `GET /orgs/${workspace.slug}`);
  const wallets = [...(org.wallets ?? workspace.wallets ?? []).map((w) => w.id), ...(org.walletIds ?? workspace.walletIds ?? [])];
  for (const wallet of new Set(wallets)) {
    await json(
      await fetch(`${baseUrl}/billing/wallets/${wallet}/credits`, {
        method: 'POST',
        headers: { ...admin.headers, 'content-type': 'application/json' },
        body: JSON.stringify({ amount: credit, reason: 'benchmark top-up' }),
      }),
      'POST /billing/wallets/:id/credits',
    );
  }
  const offerings = await json<{ slug: string }[] | { items: { slug: string }[] }>(await fetch(`${baseUrl}/offerings`, { headers: caller.headers }), 'GET /offerings');
  const list = Array.isArray(offerings) ? offerings : offerings.items;
  const offering = list.find((o) => o.slug === 'studio')?.slug ?? list[0]?.slug;
  if (!offering) throw new Error('GET /offerings lists no offering');
  return { org: workspace.slug, offering, wallets: [...new Set(wallets)] };
}
