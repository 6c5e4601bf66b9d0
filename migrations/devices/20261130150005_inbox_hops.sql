-- Each handled event's path (issue 10): the hops its envelope gathered and the consumer's own
-- `handled` hop, with the event's subject (the order) and type, written with the inbox row by
-- bus::consumer, so the operations pages can show the path of every event of an order. Null
-- for rows from before.
alter table inbox add column hops jsonb, add column subject text, add column event_type text;
create index inbox_by_subject on inbox (consumer, subject);
