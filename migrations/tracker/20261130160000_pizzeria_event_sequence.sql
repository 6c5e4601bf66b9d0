-- The tracker owns pizzerias and announces them (PizzeriaRegistered, PizzeriaChanged); each
-- pizzeria counts its events, so consumers can order them and drop stale ones. Expand only: old
-- code ignores the column.
alter table pizzerias add column event_sequence bigint not null default 0;
