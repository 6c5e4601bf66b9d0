-- A cancel from an order source (a till, the website) that arrives after the kitchen handed the
-- order over: a race between the customer and the kitchen, not a broken message. The order stays
-- handed over (the food has left) and the cancel is kept here so a manager sees it and can
-- refund. Only the first such cancel is kept. Expand only: nullable columns old code never names.
alter table orders
    add column cancel_after_hand_over_at timestamptz,
    add column cancel_after_hand_over_recorded_at timestamptz,
    add column cancel_after_hand_over_source text,
    add column cancel_after_hand_over_reason text,
    add column cancel_after_hand_over_actor text;
