-- Accounts for the web panel: password resets, login throttling, the development
-- mailbox, and per-user session secrets.

create table password_resets (
    token_hash  bytea primary key,
    user_id     uuid not null references users (id) on delete cascade,
    expires_at  timestamptz not null,
    used_at     timestamptz,
    created_at  timestamptz not null default now()
);
create index password_resets_user_idx on password_resets (user_id);

-- Failed logins, for throttling by account and by address (cleared on success).
create table login_failures (
    id          bigint generated always as identity primary key,
    email       text not null,
    ip          text not null,
    created_at  timestamptz not null default now()
);
create index login_failures_email_idx on login_failures (lower(email), created_at);
create index login_failures_ip_idx on login_failures (ip, created_at);

-- Mail written by the default (log) mailer, readable on the development mailbox page.
create table outbound_emails (
    id          bigint generated always as identity primary key,
    to_address  text not null,
    subject     text not null,
    body        text not null,
    created_at  timestamptz not null default now()
);

-- Invitations are looked up by their token; pending ones by tenant.
create index invitations_pending_idx on invitations (tenant_id, created_at) where accepted_at is null;

-- Per-tenant API tokens are listed by member.
create index api_tokens_user_idx on api_tokens (tenant_id, user_id);

-- The "Try it" chat runs through a sandbox bot per tenant: never on Telegram.
alter table bots drop constraint bots_status_check;
alter table bots add constraint bots_status_check check (status in ('active', 'error', 'removed', 'sandbox'));
alter table bots drop constraint bots_check;
alter table bots add constraint bots_check
    check (status in ('removed', 'sandbox') or (token_ciphertext is not null and token_nonce is not null and token_key_id is not null));
drop index bots_one_live_per_tenant;
create unique index bots_one_live_per_tenant on bots (tenant_id) where status in ('active', 'error');
drop index bots_one_live_per_telegram_bot;
create unique index bots_one_live_per_telegram_bot on bots (telegram_bot_id) where status in ('active', 'error');
create unique index bots_one_sandbox_per_tenant on bots (tenant_id) where status = 'sandbox';

-- Platform events are listed newest first per kind.
create index platform_events_kind_idx on platform_events (kind, created_at desc);

-- Answers may use Telegram's HTML formatting.
alter table answer_rules add column format text not null default 'plain' check (format in ('plain', 'html'));

-- The web panel's sessions (the table tower-sessions' PostgreSQL store expects; it also
-- creates it on start if missing). Expired rows are deleted by the app.
create schema if not exists tower_sessions;
create table if not exists tower_sessions.session (
    id          text primary key not null,
    data        bytea not null,
    expiry_date timestamptz not null
);
create index if not exists session_expiry_idx on tower_sessions.session (expiry_date);
