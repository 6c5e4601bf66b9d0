-- Who replayed or discarded which dead letter of auth's consumer (auth-pizzerias), and why
-- (issue 10). Written by bus::dead_letters::audit after the broker confirmed the action; read
-- by the operations page. The same shape as every service's (migrations/tracker/...150002).
create table dead_letter_actions (
    id bigserial primary key,
    at timestamptz not null default now(),
    consumer text not null,
    action text not null check (action in ('replay', 'discard')),
    letter_key text not null,
    event_id text,
    event_type text,
    routing_key text,
    error text,
    reason text,
    actor_id uuid not null,
    actor_name text not null,
    check (action = 'replay' or reason is not null)
);
create index dead_letter_actions_by_consumer on dead_letter_actions (consumer, id desc);
