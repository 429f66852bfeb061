-- Lookups that are unique across organizations move to small routing tables of their
-- own, so that every unique key and every foreign key of a tenant table carries
-- tenant_id and the tenant tables can be distributed by it (Citus, docs/scaling.md).
-- These four are what a request finds its organization by: a webhook's public id, a live
-- Telegram bot (one organization at a time), an API token, an invitation link. The
-- routing tables keep the constraint names the code and its error messages know.

alter table bots drop constraint bots_public_id_key;
drop index bots_one_live_per_telegram_bot;
alter table api_tokens drop constraint api_tokens_token_hash_key;
alter table invitations drop constraint invitations_token_hash_key;

create table bot_routes (
    public_id text constraint bots_public_id_key primary key,
    tenant_id uuid not null,
    bot_id    uuid not null
);
insert into bot_routes (public_id, tenant_id, bot_id) select public_id, tenant_id, id from bots;

-- A Telegram bot serves one organization at a time (it has one webhook).
create table live_telegram_bots (
    telegram_bot_id bigint constraint bots_one_live_per_telegram_bot primary key,
    tenant_id       uuid not null,
    bot_id          uuid not null
);
insert into live_telegram_bots (telegram_bot_id, tenant_id, bot_id)
    select telegram_bot_id, tenant_id, id from bots where status in ('active', 'error');

create table api_token_routes (
    token_hash bytea constraint api_tokens_token_hash_key primary key,
    tenant_id  uuid not null,
    token_id   uuid not null
);
insert into api_token_routes (token_hash, tenant_id, token_id)
    select token_hash, tenant_id, id from api_tokens;

create table invitation_routes (
    token_hash    bytea constraint invitations_token_hash_key primary key,
    tenant_id     uuid not null,
    invitation_id uuid not null
);
insert into invitation_routes (token_hash, tenant_id, invitation_id)
    select token_hash, tenant_id, id from invitations;

-- Within an organization they stay unique.
create unique index bots_tenant_public_id_key on bots (tenant_id, public_id);
create unique index api_tokens_tenant_token_hash_key on api_tokens (tenant_id, token_hash);
create unique index invitations_tenant_token_hash_key on invitations (tenant_id, token_hash);
