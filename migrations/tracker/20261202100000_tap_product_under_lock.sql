-- Issue 8: a tap read its product in a round trip of its own after `lock_order_of_product`,
-- because it must see the product as it is once the order's lock is held (another tap of the
-- order may have moved it while this one waited). The tracker now asks for both in one
-- statement: `lock_order_of_product` is a PL/pgSQL set-returning function, so it has run to
-- its end (the lock taken) before its row reaches the lateral call below; and this function is
-- volatile PL/pgSQL, so its select takes a snapshot of its own when it runs, after the lock,
-- as the separate statement did. The product comes as JSON because its columns and the
-- order's share names.
create function product_under_lock(p_order_id uuid, p_product_id uuid)
returns table (product json, unfinished_others bigint)
language plpgsql volatile as $$
begin
    return query
        select row_to_json(p),
               (select count(*) from products o
                where o.order_id = p.order_id and o.done_at is null and o.id <> p.id)
        from products p
        where p.id = p_product_id and p.order_id = p_order_id;
end
$$;
