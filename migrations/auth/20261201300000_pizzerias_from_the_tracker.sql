-- The tracker owns pizzerias and announces them; auth keeps its list from those events
-- (PizzeriaRegistered, PizzeriaChanged) and remembers the last sequence applied per pizzeria,
-- so a stale or repeated event changes nothing. Expand only: old code ignores the column.
alter table pizzerias add column event_sequence bigint not null default 0;
