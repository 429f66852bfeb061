-- Tenant isolation enforced by PostgreSQL as well as by every query's tenant filter.
--
-- Every table with a tenant_id (and `tenants` itself, by id) gets row-level security,
-- enabled and forced, with two policies:
--   tenant_scope: for the role `switchboard_tenant`, only the rows of the tenant set in
--                 the transaction (`set_config('app.tenant_id', <uuid>, true)`), for reads
--                 and writes alike; with no tenant set, nothing.
--   platform:     for the role that runs the migrations (the platform's own role), every
--                 row: the webhook's lookup by public id, schedulers, superuser pages.
-- The application layer runs each request's reads and writes as `switchboard_tenant`
-- (`set_config('role', 'switchboard_tenant', true)` in the transaction, see
-- `switchboard_db::scope`); what runs without switching is the named platform path.
-- A superuser bypasses row-level security unless it switches role, which is what the
-- tenant scope does.
--
-- A table added later with a tenant_id must call `switchboard_isolate('<table>')` in its
-- migration; a test reads the catalog and fails on any that does not.

do $$
begin
    if not exists (select from pg_roles where rolname = 'switchboard_tenant') then
        begin
            create role switchboard_tenant nologin;
        exception when duplicate_object then
            null; -- another database of this cluster migrated at the same moment
        when insufficient_privilege then
            raise exception using
                message = 'cannot create the role switchboard_tenant',
                hint = format('as a database administrator: create role switchboard_tenant nologin; grant switchboard_tenant to %I; then run the migrations again', current_user);
        end;
    end if;
    -- The platform's role switches to it in each tenant-scoped transaction.
    if not pg_has_role(current_user, 'switchboard_tenant', 'member') then
        execute format('grant switchboard_tenant to %I', current_user);
    end if;
end $$;

grant usage on schema public to switchboard_tenant;
grant select, insert, update, delete on all tables in schema public to switchboard_tenant;
grant usage, select on all sequences in schema public to switchboard_tenant;
alter default privileges in schema public
    grant select, insert, update, delete on tables to switchboard_tenant;
alter default privileges in schema public
    grant usage, select on sequences to switchboard_tenant;
-- The migrations' own bookkeeping is not the tenant role's business.
revoke all on _sqlx_migrations from switchboard_tenant;

create function switchboard_isolate(t regclass, tenant_column text default 'tenant_id')
returns void language plpgsql as $$
begin
    execute format('alter table %s enable row level security', t);
    execute format('alter table %s force row level security', t);
    execute format('drop policy if exists tenant_scope on %s', t);
    execute format('drop policy if exists platform on %s', t);
    execute format(
        'create policy tenant_scope on %s to switchboard_tenant
           using (%2$I = nullif(current_setting(''app.tenant_id'', true), '''')::uuid)
           with check (%2$I = nullif(current_setting(''app.tenant_id'', true), '''')::uuid)',
        t, tenant_column);
    execute format('create policy platform on %s to %I using (true) with check (true)',
        t, current_user);
end $$;

do $$
declare
    t record;
begin
    for t in
        select c.table_name from information_schema.columns c
        join information_schema.tables tb
          on tb.table_schema = c.table_schema and tb.table_name = c.table_name
        where c.table_schema = 'public' and c.column_name = 'tenant_id'
          and tb.table_type = 'BASE TABLE'
    loop
        perform switchboard_isolate(format('public.%I', t.table_name)::regclass);
    end loop;
end $$;
select switchboard_isolate('public.tenants', 'id');
