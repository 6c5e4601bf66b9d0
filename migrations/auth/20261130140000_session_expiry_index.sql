-- Pruning (auth/src/retention.rs) deletes sessions long past their absolute end, in chunks; every
-- session, revoked or idle, is dead by then, so its end is the one column to look at.
create index sessions_by_expiry on sessions (expires_at);
