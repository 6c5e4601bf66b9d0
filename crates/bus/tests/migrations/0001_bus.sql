-- The outbox and inbox exactly as every service's migrations create them, plus a table the
-- test handler writes to.
create table outbox (
    id bigserial primary key,
    event_id uuid not null unique,
    routing_key text not null,
    payload jsonb not null,
    created_at timestamptz not null default now(),
    published_at timestamptz
);
create index outbox_unpublished on outbox (id) where published_at is null;
create function notify_outbox() returns trigger language plpgsql as $$
begin
    perform pg_notify('outbox', '');
    return null;
end $$;
create trigger outbox_notify after insert on outbox for each statement execute function notify_outbox();

create table inbox (
    consumer text not null,
    event_id uuid not null,
    processed_at timestamptz not null default now(),
    primary key (consumer, event_id)
);

create table applied (
    event_id uuid primary key,
    subject text not null,
    sequence bigint not null,
    attempt int not null,
    applied_at timestamptz not null default clock_timestamp()
);
