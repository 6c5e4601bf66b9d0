-- Device tokens end when left unused for `tokens.idle_lifetime_ms` (30 days by default): every
-- introspection of a live token pushes the end further ("silent renewal" while in use), so a
-- tablet in daily use never notices, and a token on a lost or retired tablet dies by itself.
-- Null for devices registered before this: their lifetime starts at their next use.
alter table devices add column token_expires_at timestamptz;
