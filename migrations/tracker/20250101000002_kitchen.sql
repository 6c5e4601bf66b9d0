-- Pizzerias, their stations and routes, orders, the products made for them, taps and the timeline.

create table pizzerias (
    id uuid primary key,
    name text not null,
    -- Bumped in the same transaction as every order status change, so the TV board can answer
    -- If-None-Match with one primary-key lookup.
    board_version bigint not null default 1,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);

create table stations (
    pizzeria_id uuid not null references pizzerias (id),
    code text not null,
    name text not null,
    -- Bumped in the same transaction as every change to the products waiting here: thousands of
    -- tablets poll their queue, and a matching ETag is answered from this row alone.
    queue_version bigint not null default 1,
    primary key (pizzeria_id, code)
);

create table routes (
    pizzeria_id uuid not null references pizzerias (id),
    category text not null check (category in ('pizza', 'side', 'drink', 'sauce', 'dessert')),
    position int not null check (position >= 0),
    station_code text not null,
    target_seconds int not null check (target_seconds > 0),
    primary key (pizzeria_id, category, position),
    unique (pizzeria_id, category, station_code),
    foreign key (pizzeria_id, station_code) references stations (pizzeria_id, code)
);

create table orders (
    id uuid primary key,
    pizzeria_id uuid not null references pizzerias (id),
    number int not null,
    customer_name text not null,
    show_number_only boolean not null,
    source text not null,
    placed_at timestamptz not null,
    accepted_at timestamptz not null,
    status text not null check (status in ('accepted', 'in_work', 'packed', 'handed_over', 'cancelled')),
    -- The sum of the products' targets, and when the order turns late.
    target_seconds int not null,
    due_at timestamptz not null,
    late boolean not null default false,
    -- The sequence of the last event the tracker emitted for this order (0 before the first).
    version bigint not null default 0,
    -- The items as the source sent them, so the accepted event can be rebuilt exactly.
    items jsonb not null,
    packed_at timestamptz,
    handed_over_at timestamptz,
    cancelled_at timestamptz,
    cancel_reason text
);
create index orders_by_day on orders (pizzeria_id, accepted_at desc);
create index orders_on_board on orders (pizzeria_id, accepted_at)
    where status in ('accepted', 'in_work', 'packed');
-- What the late sweeper scans.
create index orders_due on orders (due_at)
    where not late and status in ('accepted', 'in_work');

create table products (
    id uuid primary key,
    order_id uuid not null references orders (id),
    pizzeria_id uuid not null,
    item_index int not null,
    unit_index int not null,
    name text not null,
    category text not null,
    size text,
    modifiers text[] not null,
    -- The route as it was at intake: reconfiguring a pizzeria never reroutes a product in flight.
    route_stations text[] not null,
    route_targets int[] not null,
    -- Index into the route (0-based); equals the route length once the product is done.
    stage int not null,
    -- 1 for the first making, +1 with every remake.
    pass int not null default 1,
    -- The station the product waits at; null once done or when its order is cancelled.
    station text,
    entered_at timestamptz not null,
    done_at timestamptz,
    unique (order_id, item_index, unit_index)
);
create index products_by_order on products (order_id);
create index products_queue on products (pizzeria_id, station, entered_at) where station is not null;

create table taps (
    id bigserial primary key,
    product_id uuid not null references products (id),
    order_id uuid not null,
    pizzeria_id uuid not null,
    station text not null,
    stage int not null,
    pass int not null,
    started_at timestamptz not null,
    completed_at timestamptz not null,
    duration_ms bigint not null,
    target_seconds int not null,
    actor text,
    undone_at timestamptz
);
-- One live tap per stage and pass: a double tap can never complete a stage twice.
create unique index taps_one_per_stage on taps (product_id, pass, stage) where undone_at is null;
create index taps_by_station on taps (pizzeria_id, station, completed_at desc) where undone_at is null;

create table timeline (
    id bigserial primary key,
    order_id uuid not null references orders (id),
    at timestamptz not null,
    kind text not null,
    station text,
    product_id uuid,
    actor text,
    detail jsonb
);
create index timeline_by_order on timeline (order_id, id);
