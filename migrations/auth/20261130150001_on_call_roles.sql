-- The on-call roles (on_call, operations_viewer) are held across the chain, like chain_admin:
-- without a pizzeria. Old code never grants them, so it runs unchanged against this check.
alter table user_roles drop constraint user_roles_check;
alter table user_roles add constraint user_roles_check
    check ((role in ('chain_admin', 'on_call', 'operations_viewer')) = (pizzeria_id is null));
