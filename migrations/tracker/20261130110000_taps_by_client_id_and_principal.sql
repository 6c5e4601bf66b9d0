-- A station tablet queues taps made while its link is down and sends them when it returns, each
-- with an id the tablet made. A send can be repeated (its answer was lost), so the tap keeps that
-- id and a repeat finds it instead of tapping again. Unique per pizzeria: ids come from tablets,
-- and one pizzeria's tablets cannot collide with another's rows.
alter table taps add column client_tap_id uuid;
create unique index taps_by_client_tap_id on taps (pizzeria_id, client_tap_id)
    where client_tap_id is not null;

-- Who did it, beyond the name shown: the staff member behind the action (the person checked in
-- at a tablet, or the signed-in user) and the authenticated principal whose token made the
-- request (`user:<id>` or `device:<id>`). Both null for what the order sources did and for rows
-- written before this change.
alter table taps add column actor_user_id uuid, add column principal text;
alter table timeline add column actor_user_id uuid, add column principal text;
