-- The webhook's group commit: concurrent updates of different chats — of different
-- organizations, on a busy platform — are written in one transaction and one statement
-- per step (`switchboard_telegram::intake`). Such a transaction cannot hold the single
-- tenant of the tenant scope, so it runs as a fourth role:
--   intake_scope: for the role `switchboard_intake`, reads and writes of the rows of the
--                 organizations listed in the transaction
--                 (`set_config('app.tenant_ids', '{<uuid>,…}', true)`) — those whose
--                 updates are in the batch; with none listed, nothing.
-- `switchboard_isolate` now adds this policy as well, so a table isolated later gets it.

do $$
begin
    if not exists (select from pg_roles where rolname = 'switchboard_intake') then
        begin
            create role switchboard_intake nologin;
        exception when duplicate_object then
            null; -- another database of this cluster migrated at the same moment
        when insufficient_privilege then
            raise exception using
                message = 'cannot create the role switchboard_intake',
                hint = format('as a database administrator: create role switchboard_intake nologin; grant switchboard_intake to %I; then run the migrations again', current_user);
        end;
    end if;
    if not pg_has_role(current_user, 'switchboard_intake', 'member') then
        execute format('grant switchboard_intake to %I', current_user);
    end if;
end $$;

grant usage on schema public to switchboard_intake;
grant select, insert, update on all tables in schema public to switchboard_intake;
grant usage, select on all sequences in schema public to switchboard_intake;
alter default privileges in schema public grant select, insert, update on tables to switchboard_intake;
alter default privileges in schema public grant usage, select on sequences to switchboard_intake;
revoke all on _sqlx_migrations from switchboard_intake;

create or replace function switchboard_isolate(t regclass, tenant_column text default 'tenant_id')
returns void language plpgsql as $$
begin
    execute format('alter table %s enable row level security', t);
    execute format('alter table %s force row level security', t);
    execute format('drop policy if exists tenant_scope on %s', t);
    execute format('drop policy if exists desk_scope on %s', t);
    execute format('drop policy if exists intake_scope on %s', t);
    execute format('drop policy if exists platform on %s', t);
    execute format(
        'create policy tenant_scope on %s to switchboard_tenant
           using (%2$I = nullif(current_setting(''app.tenant_id'', true), '''')::uuid)
           with check (%2$I = nullif(current_setting(''app.tenant_id'', true), '''')::uuid)',
        t, tenant_column);
    execute format(
        'create policy desk_scope on %s for select to switchboard_desk
           using (%2$I = any(coalesce(nullif(current_setting(''app.tenant_ids'', true), '''')::uuid[], ''{}'')))',
        t, tenant_column);
    execute format(
        'create policy intake_scope on %s to switchboard_intake
           using (%2$I = any(coalesce(nullif(current_setting(''app.tenant_ids'', true), '''')::uuid[], ''{}'')))
           with check (%2$I = any(coalesce(nullif(current_setting(''app.tenant_ids'', true), '''')::uuid[], ''{}'')))',
        t, tenant_column);
    execute format('create policy platform on %s to %I using (true) with check (true)',
        t, current_user);
end $$;

do $$
declare
    t record;
begin
    for t in
        select c.relname::text as table_name from pg_class c
        join pg_namespace n on n.oid = c.relnamespace
        where n.nspname = 'public' and c.relrowsecurity and c.relname <> 'tenants'
    loop
        perform switchboard_isolate(format('public.%I', t.table_name)::regclass);
    end loop;
end $$;
select switchboard_isolate('public.tenants', 'id');
