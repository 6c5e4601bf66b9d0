-- Every tracker instance keeps the station queue and board versions in memory, so an unchanged
-- poll costs no database round trip (tracker/src/versions.rs). These triggers tell the
-- instances about each bump: pg_notify inside the bumping transaction is delivered when, and
-- only if, it commits. Payloads: 's <pizzeria> <version> <station>' and 'b <pizzeria> <version>'.

create function notify_queue_version() returns trigger language plpgsql as $$
begin
    perform pg_notify('kitchen_versions',
        's ' || new.pizzeria_id || ' ' || new.queue_version || ' ' || new.code);
    return null;
end
$$;

create trigger stations_notify_version
    after insert or update of queue_version on stations
    for each row execute function notify_queue_version();

create function notify_board_version() returns trigger language plpgsql as $$
begin
    perform pg_notify('kitchen_versions', 'b ' || new.id || ' ' || new.board_version);
    return null;
end
$$;

create trigger pizzerias_notify_version
    after insert or update of board_version on pizzerias
    for each row execute function notify_board_version();
