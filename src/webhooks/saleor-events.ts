import { createHash } from 'node:crypto';
import type { Sequelize } from 'sequelize';
import { BadRequestError, ValidationError } from '../errors.ts';
import { createAjv, toFieldErrors } from '../validation.ts';
import { SALEOR_ORDER_EVENTS, SaleorOrderPayloadSchema, type CreditProduct, type SaleorOrderEvent, type SaleorOrderPayload } from '../domain/billing/saleor-order.ts';
import { applySaleorOrder, type SaleorOrderOutcome } from '../domain/billing/saleor-top-ups.ts';
import { processDelivery } from './webhook-deliveries.ts';

export interface SaleorEventDeps {
  sequelize: Sequelize;
  now(): Date;
  product: CreditProduct;
}

export type SaleorEventResult =
  | { status: 'ignored'; reason: string; duplicate?: boolean }
  | { status: 'processed'; duplicate: boolean; outcome: SaleorOrderOutcome };

const validatePayload = createAjv({ useDefaults: false }).compile<SaleorOrderPayload>(SaleorOrderPayloadSchema);

/**
 * Saleor sends no delivery id; a retry sends the stored payload again, byte for byte
 * (saleor/webhook/transport/asynchronous/transport.py, send_webhook_request_async reads
 * delivery.payload), so the event and a digest of the body identify a delivery. Two different
 * events about one order have different bodies (issuedAt, refund totals), and the order's own
 * row makes the money exactly-once whatever the key.
 */
export function saleorDeliveryKey(event: string, rawBody: string): string {
  return `${event}:${createHash('sha256').update(rawBody, 'utf8').digest('base64url')}`;
}

/** Applies one verified Saleor delivery, once per delivery key. */
export async function receiveSaleorEvent(deps: SaleorEventDeps, delivery: { event: string; rawBody: string; payload: unknown }): Promise<SaleorEventResult> {
  if (!(SALEOR_ORDER_EVENTS as readonly string[]).includes(delivery.event)) {
    return { status: 'ignored', reason: `Saleor event ${delivery.event} has no effect here (subscribe ${SALEOR_ORDER_EVENTS.join(', ')}).` };
  }
  const payload = delivery.payload;
  if (payload !== null && typeof payload === 'object' && 'errors' in payload) {
    // Saleor adds `errors` when it could not resolve part of the subscription (saleor/graphql/webhook/subscription_payload.py).
    throw new BadRequestError('Saleor could not resolve the subscription query (the payload has errors): give the app MANAGE_ORDERS and use the query in the README.');
  }
  if (!validatePayload(payload)) {
    throw new ValidationError(toFieldErrors('body', validatePayload.errors), 'The body is not the payload of the control-plane Saleor subscription (see the README).');
  }
  const event = delivery.event as SaleorOrderEvent;
  const key = saleorDeliveryKey(event, delivery.rawBody);
  const result = await processDelivery(deps.sequelize, { source: 'saleor', key, event }, (tx) =>
    applySaleorOrder({ sequelize: deps.sequelize, now: deps.now }, tx, { order: payload.order, product: deps.product, deliveryKey: key }),
  );
  const outcome = result.outcome as SaleorOrderOutcome;
  if (outcome.result === 'no-credit' || outcome.result === 'not-paid') {
    return { status: 'ignored', reason: outcome.result === 'no-credit' ? 'The order buys no credit.' : 'The order is not fully paid.', duplicate: result.duplicate };
  }
  return { status: 'processed', duplicate: result.duplicate, outcome };
}
