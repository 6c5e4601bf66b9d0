-- Issue 8: a tap was about twelve statements plus BEGIN and COMMIT, and every round trip cost
-- PostgreSQL and the tracker a send, a receive and a wake-up each (docs/BENCHMARKS.md, "Where a
-- tap's CPU goes"). These functions do the same work in fewer round trips; the tracker decides
-- everything as before and builds the events itself, so what is staged is what `Outbox::stage`
-- would have staged.

-- The tail every change to an order shares (tracker/src/kitchen/change.rs): its events into
-- the outbox and the timeline, in the order they were emitted; the order's status, version and
-- status times; then the queue versions of `bump_stations` (one statement, as before, so the
-- station rows are locked in the same order by every transaction) and, when asked, the board
-- version. Returns the new versions: one row per bumped station, and one with a null code for
-- the board.
create function finish_order_change(
    p_order_id uuid,
    p_pizzeria_id uuid,
    p_status text,
    p_version bigint,
    p_at timestamptz,
    p_event_ids uuid[],
    p_routing_keys text[],
    p_payloads text[],
    p_kinds text[],
    p_stations text[],
    p_product_ids uuid[],
    p_actors text[],
    p_actor_user_ids uuid[],
    p_principals text[],
    p_details text[],
    p_bump_stations text[],
    p_bump_board boolean
) returns table (bumped_code text, bumped_version bigint)
language plpgsql as $$
begin
    -- An empty insert would still fire the outbox's statement trigger (a NOTIFY for nothing).
    if cardinality(p_event_ids) > 0 then
        insert into outbox (event_id, routing_key, payload)
        select e.event_id, e.routing_key, e.payload::jsonb
        from unnest(p_event_ids, p_routing_keys, p_payloads) with ordinality
             as e(event_id, routing_key, payload, n)
        order by e.n;
        insert into timeline (order_id, at, kind, station, product_id, actor, actor_user_id,
                              principal, detail)
        select p_order_id, p_at, t.kind, t.station, t.product_id, t.actor, t.actor_user_id,
               t.principal, t.detail::jsonb
        from unnest(p_kinds, p_stations, p_product_ids, p_actors, p_actor_user_ids,
                    p_principals, p_details) with ordinality
             as t(kind, station, product_id, actor, actor_user_id, principal, detail, n)
        order by t.n;
    end if;
    update orders set
        status = p_status,
        version = p_version,
        packed_at = case p_status when 'packed' then coalesce(packed_at, p_at)
                                  when 'in_work' then null else packed_at end,
        handed_over_at = case p_status when 'handed_over' then coalesce(handed_over_at, p_at)
                                       else handed_over_at end,
        cancelled_at = case p_status when 'cancelled' then coalesce(cancelled_at, p_at)
                                     else cancelled_at end
    where id = p_order_id;
    if cardinality(p_bump_stations) > 0 then
        return query
            update stations set queue_version = queue_version + 1
            where pizzeria_id = p_pizzeria_id and code = any(p_bump_stations)
            returning code, queue_version;
    end if;
    if p_bump_board then
        return query
            update pizzerias set board_version = board_version + 1 where id = p_pizzeria_id
            returning null::text, board_version;
    end if;
end
$$;

-- A tap's first step: the station must exist and the product belong to the pizzeria; then the
-- product's order is locked and returned. No row when any of the three is missing (the tracker
-- then asks again, statement by statement, to say which). Each statement of a PL/pgSQL function
-- sees what committed before it began, as separate statements from the tracker did.
create function lock_order_of_product(p_pizzeria_id uuid, p_station text, p_product_id uuid)
returns setof orders
language plpgsql as $$
declare
    v_order_id uuid;
begin
    perform 1 from stations where pizzeria_id = p_pizzeria_id and code = p_station;
    if not found then
        return;
    end if;
    select order_id into v_order_id from products
    where id = p_product_id and pizzeria_id = p_pizzeria_id;
    if not found then
        return;
    end if;
    return query select * from orders where id = v_order_id for update;
end
$$;
