import { Type, type Static } from '@sinclair/typebox';
import { createAjv, toFieldErrors } from '../validation.ts';
import { SALEOR_ORDERS_QUERY, SaleorOrderSchema, type SaleorOrder } from '../domain/billing/saleor-order.ts';

/** The `where` of Saleor's orders query this service uses (OrderWhereInput, Saleor ≥ 3.22). */
export type SaleorOrderFilter = { updatedAt: { gte: string; lte: string } } | { ids: string[] };

/** Reads orders from Saleor. */
export interface SaleorOrderReader {
  list(where: SaleorOrderFilter): Promise<SaleorOrder[]>;
}

/** Why Saleor could not be read; `retryable` says whether the next pass may do better. */
export class SaleorReadError extends Error {
  readonly retryable: boolean;
  constructor(message: string, retryable: boolean, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SaleorReadError';
    this.retryable = retryable;
  }
}

const Page = Type.Object({
  data: Type.Object({
    orders: Type.Object({
      pageInfo: Type.Object({ hasNextPage: Type.Boolean(), endCursor: Type.Union([Type.String({ maxLength: 1000 }), Type.Null()]) }),
      edges: Type.Array(Type.Object({ node: SaleorOrderSchema }), { maxItems: 100 }),
    }),
  }),
});
const validatePage = createAjv({ useDefaults: false }).compile<Static<typeof Page>>(Page);

/** Most pages one read follows: 100 orders a page, so 100,000 orders a day before it stops. */
const MAX_PAGES = 1000;

/**
 * Saleor's GraphQL API with an app token (`Authorization: Bearer`, permission MANAGE_ORDERS),
 * page by page. A 5xx, a 429 or a network failure is transient; a 4xx or GraphQL errors (a
 * missing permission, a query this Saleor does not know) need a person.
 */
export function createSaleorOrderReader(options: { apiUrl: string; appToken: string; fetch?: typeof fetch; timeoutMs?: number }): SaleorOrderReader {
  const send = options.fetch ?? fetch;
  return {
    async list(where) {
      const orders: SaleorOrder[] = [];
      let after: string | null = null;
      for (let page = 0; page < MAX_PAGES; page += 1) {
        let response: Response;
        try {
          response = await send(options.apiUrl, {
            method: 'POST',
            headers: { 'content-type': 'application/json', authorization: `Bearer ${options.appToken}` },
            body: JSON.stringify({ query: SALEOR_ORDERS_QUERY, variables: { where, after } }),
            redirect: 'manual',
            signal: AbortSignal.timeout(options.timeoutMs ?? 30_000),
          });
        } catch (error) {
          throw new SaleorReadError(`Saleor at ${options.apiUrl} could not be reached.`, true, { cause: error });
        }
        const text = await response.text();
        if (response.status >= 500 || response.status === 429) throw new SaleorReadError(`Saleor answered ${response.status}.`, true);
        if (response.status === 401 || response.status === 403) throw new SaleorReadError(`Saleor refused the app token (${response.status}): check SALEOR_APP_TOKEN and that the app has MANAGE_ORDERS.`, false);
        if (response.status !== 200) throw new SaleorReadError(`Saleor answered ${response.status} to the orders query.`, false);
        let body: unknown;
        try {
          body = JSON.parse(text);
        } catch {
          throw new SaleorReadError('Saleor answered the orders query with something that is not JSON.', true);
        }
        const errors = (body as { errors?: { message?: unknown }[] }).errors;
        if (Array.isArray(errors) && errors.length > 0) {
          throw new SaleorReadError(`Saleor refused the orders query: ${String(errors[0]?.message ?? 'error').slice(0, 300)} (the app needs MANAGE_ORDERS; Saleor ≥ 3.22).`, false);
        }
        if (!validatePage(body)) {
          const first = toFieldErrors('body', validatePage.errors)[0];
          throw new SaleorReadError(`Saleor's orders page is not what the query asks for (${first?.pointer} ${first?.message}).`, false);
        }
        orders.push(...body.data.orders.edges.map((edge) => edge.node));
        if (!body.data.orders.pageInfo.hasNextPage) return orders;
        after = body.data.orders.pageInfo.endCursor;
        if (after === null) throw new SaleorReadError('Saleor said there is a next page but gave no cursor.', false);
      }
      throw new SaleorReadError(`More than ${MAX_PAGES * 100} orders in one read; narrow the window.`, false);
    },
  };
}
