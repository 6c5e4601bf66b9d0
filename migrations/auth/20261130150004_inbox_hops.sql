-- Each handled event's path (issue 10): the hops its envelope gathered and the consumer's own
-- `handled` hop, written with the inbox row by bus::consumer. Null for rows from before.
alter table inbox add column hops jsonb;
