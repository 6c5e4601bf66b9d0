-- Pre-orders: an order with a promised time is held and fired to its first stations at the
-- promised time minus its slowest product's route target. While held, `fires_at` says when, and
-- its products wait at no station (no tablet lists them). Firing clears `fires_at` in the same
-- transaction that puts the products on their stations and stages `OrderFired`, so a restart
-- or a second tracker instance can neither lose nor repeat it.
alter table orders add column promised_at timestamptz, add column fires_at timestamptz;
-- What the firing job scans: only held orders, by when they fire.
create index orders_to_fire on orders (fires_at) where fires_at is not null;
