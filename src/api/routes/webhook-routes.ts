import { Type } from '@sinclair/typebox';
import type { Sequelize } from 'sequelize';
import { AppError, BadRequestError, NotFoundError, ValidationError } from '../../errors.ts';
import type { Metrics, WebhookDeliveryOutcome } from '../../metrics.ts';
import type { WebhookSource } from '../../webhooks/webhook-deliveries.ts';
import { createAjv, toFieldErrors } from '../../validation.ts';
import { defineRoute, type RouteInput, type RouteSpec } from '../route.ts';
import type { GithubSignatureVerifier } from '../../webhooks/github-signature.ts';
import type { Logger } from '../../logger.ts';
import type { BaseBranchMove } from '../../domain/convergence/base-branch-convergence.ts';
import { receiveGithubEvent } from '../../webhooks/github-events.ts';
import { ArgocdNotificationSchema, type ArgocdNotification } from '../../webhooks/argocd-notification.ts';
import { receiveArgocdNotification } from '../../webhooks/argocd-events.ts';
import type { ArgocdTokenVerifier } from '../../webhooks/argocd-token.ts';
import type { ApplicationSyncDeps } from '../../domain/application-sync.ts';
import type { SaleorSignatureVerifier } from '../../webhooks/saleor-signature.ts';
import { receiveSaleorEvent } from '../../webhooks/saleor-events.ts';
import type { CreditProduct } from '../../domain/billing/saleor-order.ts';
import { countSaleorOutcome } from '../../domain/billing/saleor-top-ups.ts';

export interface WebhookRoutesDeps {
  sequelize: Sequelize;
  /**
   * Ancestry is asked before and again inside each notice's transaction: give the service's one
   * cacheAncestry, so the second answer comes from memory.
   */
  repository: ApplicationSyncDeps['repository'];
  baseBranch: string;
  /** Reads the base branch back after a merge or a push (convergence). */
  converge?: (move?: BaseBranchMove) => Promise<unknown>;
  /** Where a failed read of main after a delivery is logged (it never fails the delivery). */
  logger?: Pick<Logger, 'warn'>;
  /** Undefined when GITHUB_WEBHOOK_SECRET is not set: the GitHub receiver answers 404. */
  github: GithubSignatureVerifier | undefined;
  /** Undefined when ARGOCD_WEBHOOK_TOKEN is not set: the Argo CD receiver answers 404. */
  argocd: ArgocdTokenVerifier | undefined;
  /** Undefined when SALEOR_API_URL is not set: the Saleor receiver answers 404. */
  saleor?: { verifier: SaleorSignatureVerifier; product: CreditProduct; now?: () => Date };
  metrics?: Pick<Metrics, 'webhookDeliveries'> & Partial<Pick<Metrics, 'saleorOrders' | 'saleorRefundShortfall'>>;
}

/** GitHub's cap on a webhook payload: 25 MB. */
export const GITHUB_WEBHOOK_PAYLOAD_MAX = 25 * 1024 * 1024;

const Acknowledgement = Type.Object({
  status: Type.Union([Type.Literal('processed'), Type.Literal('ignored')]),
  duplicate: Type.Optional(Type.Boolean({ description: 'Already processed before: nothing was done again.' })),
  reason: Type.Optional(Type.String()),
  outcome: Type.Optional(Type.Unknown({ description: 'What the delivery did (changes and instances moved).' })),
});

const validateNotification = createAjv({ useDefaults: false }).compile<ArgocdNotification>(ArgocdNotificationSchema);

/**
 * The three receivers. Each authenticates itself (route access 'webhook') before reading
 * anything: GitHub by HMAC over the raw body, Argo CD by a bearer secret, Saleor by a JWS
 * checked against its JWKS. Answers are quick:
 * each delivery is one short transaction.
 */
export function webhookRoutes(deps: WebhookRoutesDeps): RouteSpec[] {
  return [
    defineRoute({
      method: 'post',
      path: '/webhooks/github',
      operationId: 'receiveGithubWebhook',
      // "Payloads are capped at 25 MB" (docs.github.com, webhook events and payloads): a larger
      // push is never sent, and a 413 for a smaller one is a delivery GitHub does not redeliver.
      bodyLimitBytes: GITHUB_WEBHOOK_PAYLOAD_MAX,
      summary: 'GitHub webhook receiver (pull_request, push).',
      description:
        'Verifies X-Hub-Signature-256 over the raw body (current and additional secrets), then applies the event once per X-GitHub-Delivery. ' +
        '`pull_request` closed+merged moves the change to merged and its instances to syncing; closed unmerged rejects them; reopened reopens the change. ' +
        '`push` to the base branch marks directly committed changes merged. Other events are acknowledged with 202 and ignored.',
      tags: ['webhooks'],
      access: 'webhook',
      responses: {
        200: { description: 'Processed (or already processed: duplicate).', schema: Acknowledgement },
        202: { description: 'Acknowledged; the event has no effect here.', schema: Acknowledgement },
        400: { description: 'Missing or malformed GitHub headers, or a payload without the fields the event needs.' },
        401: { description: 'The signature does not match the body.' },
      },
      handler: counted(deps, 'github', async ({ ctx }) => {
        if (!deps.github) throw new NotFoundError('GitHub webhooks are not configured on this service (set GITHUB_WEBHOOK_SECRET).');
        const rawBody = typeof ctx.request.rawBody === 'string' ? ctx.request.rawBody : undefined;
        const delivery = await deps.github.verify(ctx.headers, rawBody);
        const result = await receiveGithubEvent(
          {
            sequelize: deps.sequelize,
            baseBranch: deps.baseBranch,
            ...(deps.converge ? { converge: deps.converge } : {}),
            onConvergeError: (error) => deps.logger?.warn({ err: error }, 'could not read the base branch back after a GitHub delivery; the reconciler will'),
          },
          { id: delivery.id, name: delivery.name, payload: parseJson(rawBody!) },
        );
        if (result.status === 'ignored') {
          ctx.status = 202;
          ctx.body = { status: 'ignored', reason: result.reason };
        } else {
          ctx.status = 200;
          ctx.body = { status: 'processed', duplicate: result.duplicate, outcome: result.changes };
        }
      }),
    }),
    defineRoute({
      method: 'post',
      path: '/webhooks/argocd',
      operationId: 'receiveArgocdNotification',
      summary: 'Argo CD Notifications receiver.',
      description:
        'Authenticated by `Authorization: Bearer <secret>` (Argo CD cannot sign). The body is what the control-plane notification template produces ' +
        '(see the ArgocdNotification schema in the README); it is deduplicated by application, revision, phase, finishedAt and health.',
      tags: ['webhooks'],
      access: 'webhook',
      responses: {
        200: { description: 'Processed (or a duplicate).', schema: Acknowledgement },
        202: { description: 'Acknowledged; the Application is not an instance of this service.', schema: Acknowledgement },
        400: { description: 'The payload is not a control-plane notification.' },
        401: { description: 'Missing or wrong bearer secret.' },
      },
      handler: counted(deps, 'argocd', async ({ ctx }) => {
        if (!deps.argocd) throw new NotFoundError('Argo CD webhooks are not configured on this service (set ARGOCD_WEBHOOK_TOKEN).');
        deps.argocd.verify(ctx.headers);
        const body: unknown = ctx.request.body;
        if (!validateNotification(body)) throw new ValidationError(toFieldErrors('body', validateNotification.errors), 'The body is not a control-plane Argo CD notification.');
        const result = await receiveArgocdNotification({ sequelize: deps.sequelize, repository: deps.repository }, body);
        const ignored = !result.duplicate && result.outcome?.instanceId === undefined;
        ctx.status = ignored ? 202 : 200;
        ctx.body = { status: ignored ? 'ignored' : 'processed', duplicate: result.duplicate, outcome: result.outcome };
      }),
    }),
    defineRoute({
      method: 'post',
      path: '/webhooks/saleor',
      operationId: 'receiveSaleorWebhook',
      summary: 'Saleor webhook receiver (credit top-ups and their refunds).',
      description:
        'Verifies Saleor-Signature (a detached RS256 JWS over the raw body, checked with the keys of the Saleor in SALEOR_API_URL, from its JWKS), ' +
        'then applies the order once per delivery (event + body digest): ORDER_FULLY_PAID credits the org named by the order metadata `gsv.io/org-id` once per order; ' +
        'ORDER_REFUNDED and ORDER_FULLY_REFUNDED take back the refunded share once per refund. Other events, and orders that buy no credit, are acknowledged with 202.',
      tags: ['webhooks'],
      access: 'webhook',
      responses: {
        200: { description: 'Processed (or already processed: duplicate). An order naming no known org is recorded as unmatched.', schema: Acknowledgement },
        202: { description: 'Acknowledged; the event or the order has no effect here.', schema: Acknowledgement },
        400: { description: 'Missing or malformed Saleor headers (an HMAC signature included), or a body that is not the control-plane subscription payload.' },
        401: { description: 'The signature is not from the configured Saleor.' },
        503: { description: "Saleor's JWKS could not be read (or may not show a just-rotated key yet): Saleor retries." },
      },
      handler: counted(deps, 'saleor', async ({ ctx }) => {
        const saleor = deps.saleor;
        if (!saleor) throw new NotFoundError('Saleor webhooks are not configured on this service (set SALEOR_API_URL).');
        const rawBody = typeof ctx.request.rawBody === 'string' ? ctx.request.rawBody : undefined;
        const delivery = await saleor.verifier.verify(ctx.headers, rawBody);
        const result = await receiveSaleorEvent(
          { sequelize: deps.sequelize, now: saleor.now ?? (() => new Date()), product: saleor.product },
          { event: delivery.event, rawBody: rawBody!, payload: parseJson(rawBody!) },
        );
        if (result.status === 'ignored') {
          ctx.status = 202;
          ctx.body = { status: 'ignored', reason: result.reason };
          return;
        }
        if (!result.duplicate && deps.metrics) countSaleorOutcome(deps.metrics, result.outcome, 'webhook');
        ctx.status = 200;
        ctx.body = { status: 'processed', duplicate: result.duplicate, outcome: result.outcome };
      }),
    }),
  ];
}

/** Counts each delivery by how its answer ended (webhook_deliveries_total): 4xx rejected, 5xx failed. */
function counted(deps: WebhookRoutesDeps, source: WebhookSource, handler: (input: WebhookInput) => Promise<void>) {
  const count = (outcome: WebhookDeliveryOutcome) => deps.metrics?.webhookDeliveries.inc({ source, outcome });
  return async (input: WebhookInput): Promise<void> => {
    try {
      await handler(input);
    } catch (error) {
      count(error instanceof AppError && error.status < 500 ? 'rejected' : 'failed');
      throw error;
    }
    const answer = input.ctx.body as { status: 'processed' | 'ignored'; duplicate?: boolean };
    count(answer.status === 'ignored' ? 'ignored' : answer.duplicate ? 'duplicate' : 'processed');
  };
}

type WebhookInput = RouteInput<Record<string, string>, Record<string, unknown>, undefined>;

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new BadRequestError('The request body is not valid JSON.');
  }
}
