import autocannon from 'autocannon';

export interface LoadOptions {
  url: string;
  method?: 'GET' | 'POST';
  headers?: Record<string, string>;
  /** Body of the n-th request (0-based), for requests that must differ (unique names). */
  body?: (n: number) => string;
  /** Headers of the n-th request, for requests that must differ there (delivery ids). */
  headersFor?: (n: number) => Record<string, string>;
  connections: number;
  durationSeconds: number;
}

export interface LoadResult {
  /** Successful (2xx) responses per second over the run. */
  okPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  ok: number;
  non2xx: number;
  errors: number;
  statusCounts: Record<string, number>;
}

/** Drives one endpoint with autocannon from this process; counts only 2xx as throughput. */
export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  let n = 0;
  const result = await autocannon({
    url: options.url,
    method: options.method ?? 'GET',
    headers: { ...(options.body ? { 'content-type': 'application/json' } : {}), ...options.headers },
    connections: options.connections,
    duration: options.durationSeconds,
    timeout: 10,
    ...(options.body || options.headersFor
      ? {
          requests: [
            {
              setupRequest: (request) => {
                const i = n++;
                return {
                  ...request,
                  ...(options.body ? { body: options.body(i) } : {}),
                  ...(options.headersFor ? { headers: { ...request.headers, ...options.headersFor(i) } } : {}),
                };
              },
            },
          ],
        }
      : {}),
  });
  const statusCounts: Record<string, number> = {};
  for (const [status, stat] of Object.entries(result.statusCodeStats ?? {})) statusCounts[status] = stat.count ?? 0;
  return {
    okPerSecond: result['2xx'] / result.duration,
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    ok: result['2xx'],
    non2xx: result.non2xx,
    errors: result.errors,
    statusCounts,
  };
}

export function describeFailures(result: LoadResult): string {
  const failing = Object.entries(result.statusCounts).filter(([status]) => !status.startsWith('2'));
  const parts = failing.map(([status, count]) => `${count}× ${status}`);
  if (result.errors) parts.push(`${result.errors} connection errors`);
  return parts.join(', ');
}
