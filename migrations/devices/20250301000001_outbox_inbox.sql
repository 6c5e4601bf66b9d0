-- The transactional outbox and the consumer inbox, in the shape the bus crate reads and writes.
create table outbox (
    id bigserial primary key,
    event_id uuid not null unique,
    routing_key text not null,
    payload jsonb not null,
    created_at timestamptz not null default now(),
    published_at timestamptz
);
create index outbox_unpublished on outbox (id) where published_at is null;
create function notify_outbox() returns trigger language plpgsql as $$ begin perform pg_notify('outbox', ''); return null; end $$;
create trigger outbox_notify after insert on outbox for each statement execute function notify_outbox();

create table inbox (
    consumer text not null,
    event_id uuid not null,
    processed_at timestamptz not null default now(),
    primary key (consumer, event_id)
);
