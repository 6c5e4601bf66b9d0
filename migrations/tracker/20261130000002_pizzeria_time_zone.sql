-- A pizzeria's IANA time zone (`Europe/Moscow`): its days and hours in reports and order lists
-- are local ones. Expand only; existing pizzerias keep UTC until a chain admin sets theirs.
alter table pizzerias add column time_zone text not null default 'UTC';
