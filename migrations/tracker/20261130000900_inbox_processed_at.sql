-- The consumer prunes inbox ids by age (bus::retention); without this index every prune reads
-- the whole inbox.
create index inbox_processed_at on inbox (processed_at);
