-- What a station needs to be safe in a rush (issue 11). Expand only: every new column has a
-- default or is nullable, so the previous release keeps running against this schema.

-- Allergens as the order source sent them (codes such as `nuts`, `gluten`), never guessed from
-- the modifiers' words.
alter table products add column allergens text[] not null default '{}';
-- Goes to the top of every station: a remake, or an order a manager marked as a rush.
alter table products add column urgent boolean not null default false;
-- Why the product is being made again, for the card at its first station.
alter table products add column remake_reason text;
-- When the product's clock starts at its first station, if later than `entered_at`: a drink
-- or a sauce is due together with the order's slowest product, not the moment it was placed.
alter table products add column clock_from timestamptz;

-- Short notices a station shows beside its cards, e.g. "CANCELLED #4204" at every station that
-- had one of the order's products when it was cancelled.
create table station_alerts (
    id bigserial primary key,
    pizzeria_id uuid not null,
    station text not null,
    order_id uuid not null references orders (id),
    number int not null,
    kind text not null check (kind in ('cancelled')),
    reason text,
    at timestamptz not null
);
create index station_alerts_recent on station_alerts (pizzeria_id, station, at desc);
