-- What the sync worker needs to mirror tracker events idempotently. It lives in tables of its
-- own, plus two nullable columns on order_history that the monolith's code never names, so the
-- monolith's reads and writes work unchanged (an expand-only change).

-- Every event the worker has committed, written by the bus consumer in the same transaction as
-- the mirrored rows; a redelivered event is skipped.
create table inbox (
    consumer text not null,
    event_id uuid not null,
    processed_at timestamptz not null default now(),
    primary key (consumer, event_id)
);

-- The sequence of the event that last set orders.status, so a late, stale event never
-- overwrites newer state.
create table sync_order_state (
    order_uuid uuid primary key references orders (order_uuid),
    status_sequence bigint not null
);

-- The tracker tracks each unit of a line on its own (quantity 3 is three products); this maps a
-- unit to its legacy line, so a tap lands on the right order_items row.
create table sync_order_products (
    product_id uuid primary key,
    order_item_id integer not null references order_items (id)
);

-- The event a history row came from: a replayed event never adds a second row, and rows with
-- the same time keep the tracker's order.
alter table order_history add column event_id uuid unique;
alter table order_history add column event_sequence bigint;
