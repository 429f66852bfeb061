-- Switchboard's data model. Every tenant-owned table carries tenant_id in its key, and
-- foreign keys between tenant tables include tenant_id, so a row of one tenant can never
-- point at another tenant's row.

create function set_updated_at() returns trigger language plpgsql as $$
begin
    new.updated_at = now();
    return new;
end;
$$;

-- Platform ---------------------------------------------------------------------------

create table tenants (
    id          uuid primary key,
    slug        text not null unique check (slug ~ '^[a-z0-9][a-z0-9-]{0,47}$'),
    name        text not null check (length(name) between 1 and 200),
    status      text not null default 'active' check (status in ('active', 'suspended')),
    created_at  timestamptz not null default now(),
    updated_at  timestamptz not null default now()
);
create trigger tenants_updated_at before update on tenants
    for each row execute function set_updated_at();

create table users (
    id              uuid primary key,
    email           text not null check (length(email) between 3 and 254),
    password_hash   text,
    display_name    text not null default '',
    locale          text,
    is_superuser    boolean not null default false,
    is_active       boolean not null default true,
    email_verified_at timestamptz,
    last_login_at   timestamptz,
    created_at      timestamptz not null default now(),
    updated_at      timestamptz not null default now()
);
create unique index users_email_key on users (lower(email));
create trigger users_updated_at before update on users
    for each row execute function set_updated_at();

create table memberships (
    tenant_id   uuid not null references tenants (id) on delete cascade,
    user_id     uuid not null references users (id) on delete cascade,
    role        text not null check (role in ('owner', 'admin', 'operator')),
    created_at  timestamptz not null default now(),
    updated_at  timestamptz not null default now(),
    primary key (tenant_id, user_id)
);
create index memberships_user_idx on memberships (user_id);
create trigger memberships_updated_at before update on memberships
    for each row execute function set_updated_at();

create table invitations (
    tenant_id   uuid not null references tenants (id) on delete cascade,
    id          uuid not null,
    email       text not null,
    role        text not null check (role in ('owner', 'admin', 'operator')),
    token_hash  bytea not null unique,
    invited_by  uuid references users (id) on delete set null,
    expires_at  timestamptz not null,
    accepted_at timestamptz,
    created_at  timestamptz not null default now(),
    primary key (tenant_id, id)
);

create table oauth_identities (
    id          uuid primary key,
    user_id     uuid not null references users (id) on delete cascade,
    provider    text not null,
    subject     text not null,
    email       text,
    created_at  timestamptz not null default now(),
    unique (provider, subject)
);
create index oauth_identities_user_idx on oauth_identities (user_id);

create table api_tokens (
    tenant_id    uuid not null,
    id           uuid not null,
    user_id      uuid not null,
    name         text not null check (length(name) between 1 and 100),
    token_hash   bytea not null unique,
    prefix       text not null,
    last_used_at timestamptz,
    expires_at   timestamptz,
    revoked_at   timestamptz,
    created_at   timestamptz not null default now(),
    primary key (tenant_id, id),
    foreign key (tenant_id, user_id) references memberships (tenant_id, user_id) on delete cascade
);

-- Events outside any tenant (logins, superuser actions).
create table platform_events (
    id          bigint generated always as identity primary key,
    user_id     uuid references users (id) on delete set null,
    kind        text not null,
    ip          text,
    data        jsonb not null default '{}',
    created_at  timestamptz not null default now()
);
create index platform_events_user_idx on platform_events (user_id, id);

-- Bots and their configuration -------------------------------------------------------

create table bots (
    tenant_id           uuid not null references tenants (id) on delete cascade,
    id                  uuid not null,
    -- The id in the webhook URL: random, so bot ids cannot be guessed from it.
    public_id           text not null unique,
    telegram_bot_id     bigint not null,
    username            text not null,
    first_name          text not null default '',
    token_ciphertext    bytea,
    token_nonce         bytea,
    token_key_id        text,
    token_hint          text not null,
    webhook_secret_hash bytea,
    webhook_url         text,
    mode                text not null default 'webhook' check (mode in ('webhook', 'polling')),
    status              text not null default 'active' check (status in ('active', 'error', 'removed')),
    last_error          text,
    removed_at          timestamptz,
    created_at          timestamptz not null default now(),
    updated_at          timestamptz not null default now(),
    primary key (tenant_id, id),
    check (status = 'removed' or (token_ciphertext is not null and token_nonce is not null and token_key_id is not null))
);
-- One live bot per tenant for now; removed bots keep their history.
create unique index bots_one_live_per_tenant on bots (tenant_id) where status <> 'removed';
-- A Telegram bot serves one tenant at a time (it has one webhook).
create unique index bots_one_live_per_telegram_bot on bots (telegram_bot_id) where status <> 'removed';
create trigger bots_updated_at before update on bots
    for each row execute function set_updated_at();

create table bot_settings (
    tenant_id            uuid primary key references tenants (id) on delete cascade,
    default_language     text not null default 'en' check (default_language in ('en', 'ru')),
    welcome_text         text not null,
    help_text            text not null,
    handover_text        text not null,
    closing_text         text not null,
    already_waiting_text text not null,
    stale_button_text    text not null,
    -- Per-language overrides: {"ru": {"welcome_text": "..."}}.
    translations         jsonb not null default '{}',
    answer_threshold     real not null default 0.5 check (answer_threshold between 0 and 1),
    suggest_threshold    real not null default 0.3 check (suggest_threshold between 0 and 1),
    timezone             text not null default 'UTC',
    working_hours        jsonb,
    offhours_text        text,
    created_at           timestamptz not null default now(),
    updated_at           timestamptz not null default now()
);
create trigger bot_settings_updated_at before update on bot_settings
    for each row execute function set_updated_at();

create table answer_rules (
    tenant_id   uuid not null references tenants (id) on delete cascade,
    id          uuid not null,
    title       text not null,
    answer      text not null,
    examples    text[] not null default '{}',
    keywords    text[] not null default '{}',
    priority    integer not null default 0,
    enabled     boolean not null default true,
    featured    boolean not null default false,
    hit_count   bigint not null default 0,
    last_hit_at timestamptz,
    created_at  timestamptz not null default now(),
    updated_at  timestamptz not null default now(),
    primary key (tenant_id, id)
);
create index answer_rules_list_idx on answer_rules (tenant_id, created_at, id);
create trigger answer_rules_updated_at before update on answer_rules
    for each row execute function set_updated_at();

create table menus (
    tenant_id   uuid not null references tenants (id) on delete cascade,
    id          uuid not null,
    name        text not null,
    text        text not null,
    is_main     boolean not null default false,
    created_at  timestamptz not null default now(),
    updated_at  timestamptz not null default now(),
    primary key (tenant_id, id)
);
create unique index menus_one_main_per_tenant on menus (tenant_id) where is_main;
create trigger menus_updated_at before update on menus
    for each row execute function set_updated_at();

-- A button belongs to a menu or to a rule's answer.
create table buttons (
    tenant_id       uuid not null references tenants (id) on delete cascade,
    id              uuid not null,
    menu_id         uuid,
    owner_rule_id   uuid,
    row_index       integer not null check (row_index >= 0),
    position        integer not null check (position >= 0),
    label           text not null check (length(label) between 1 and 64),
    action          text not null check (action in ('rule', 'text', 'submenu', 'url', 'handover')),
    rule_id         uuid,
    target_menu_id  uuid,
    url             text,
    text            text,
    created_at      timestamptz not null default now(),
    updated_at      timestamptz not null default now(),
    primary key (tenant_id, id),
    check (num_nonnulls(menu_id, owner_rule_id) = 1),
    check (action <> 'rule' or rule_id is not null),
    check (action <> 'submenu' or target_menu_id is not null),
    check (action <> 'url' or url is not null),
    check (action <> 'text' or text is not null),
    foreign key (tenant_id, menu_id) references menus (tenant_id, id) on delete cascade,
    foreign key (tenant_id, owner_rule_id) references answer_rules (tenant_id, id) on delete cascade,
    foreign key (tenant_id, rule_id) references answer_rules (tenant_id, id) on delete cascade,
    foreign key (tenant_id, target_menu_id) references menus (tenant_id, id) on delete cascade
);
create index buttons_menu_idx on buttons (tenant_id, menu_id, row_index, position);
create index buttons_owner_rule_idx on buttons (tenant_id, owner_rule_id, row_index, position);
create index buttons_rule_idx on buttons (tenant_id, rule_id);
create index buttons_target_menu_idx on buttons (tenant_id, target_menu_id);
create trigger buttons_updated_at before update on buttons
    for each row execute function set_updated_at();

create table commands (
    tenant_id   uuid not null references tenants (id) on delete cascade,
    id          uuid not null,
    command     text not null check (command ~ '^[a-z0-9_]{1,32}$'),
    description text not null check (length(description) between 1 and 256),
    response    text not null,
    enabled     boolean not null default true,
    created_at  timestamptz not null default now(),
    updated_at  timestamptz not null default now(),
    primary key (tenant_id, id),
    unique (tenant_id, command)
);
create trigger commands_updated_at before update on commands
    for each row execute function set_updated_at();

-- Telegram side ---------------------------------------------------------------------

create table end_users (
    tenant_id        uuid not null,
    id               uuid not null,
    bot_id           uuid not null,
    telegram_user_id bigint not null,
    chat_id          bigint not null,
    username         text,
    first_name       text not null default '',
    last_name        text,
    language_code    text,
    is_blocked       boolean not null default false,
    notes            text not null default '',
    first_seen_at    timestamptz not null default now(),
    last_seen_at     timestamptz not null default now(),
    primary key (tenant_id, id),
    unique (tenant_id, bot_id, telegram_user_id),
    foreign key (tenant_id, bot_id) references bots (tenant_id, id) on delete cascade
);

create table conversations (
    tenant_id       uuid not null,
    id              uuid not null,
    bot_id          uuid not null,
    end_user_id     uuid not null,
    status          text not null check (status in ('bot', 'waiting', 'assigned', 'closed')),
    assignee_id     uuid references users (id) on delete set null,
    handover_reason text,
    resolution      text,
    rating          smallint check (rating between 1 and 5),
    is_test         boolean not null default false,
    opened_at       timestamptz not null default now(),
    waiting_since   timestamptz,
    assigned_at     timestamptz,
    first_response_at timestamptz,
    closed_at       timestamptz,
    closed_by       uuid references users (id) on delete set null,
    last_message_at timestamptz not null default now(),
    created_at      timestamptz not null default now(),
    updated_at      timestamptz not null default now(),
    primary key (tenant_id, id),
    foreign key (tenant_id, bot_id) references bots (tenant_id, id) on delete cascade,
    foreign key (tenant_id, end_user_id) references end_users (tenant_id, id) on delete cascade
);
-- At most one open conversation per end user.
create unique index conversations_one_open_per_user on conversations (tenant_id, end_user_id)
    where status <> 'closed';
create index conversations_queue_idx on conversations (tenant_id, status, last_message_at desc, id);
create index conversations_user_idx on conversations (tenant_id, end_user_id, opened_at desc);
create trigger conversations_updated_at before update on conversations
    for each row execute function set_updated_at();

create table messages (
    tenant_id           uuid not null,
    id                  bigint generated always as identity,
    conversation_id     uuid not null,
    end_user_id         uuid not null,
    direction           text not null check (direction in ('in', 'out')),
    sender              text not null check (sender in ('user', 'bot', 'operator', 'system')),
    operator_id         uuid references users (id) on delete set null,
    kind                text not null default 'text',
    text                text not null default '',
    -- Buttons sent with the message, media descriptors, callback data …
    payload             jsonb,
    rule_id             uuid,
    score               real,
    match               jsonb,
    update_id           bigint,
    telegram_message_id bigint,
    delivery_status     text check (delivery_status in ('pending', 'sending', 'sent', 'failed')),
    delivery_error      text,
    attempts            integer not null default 0,
    next_attempt_at     timestamptz,
    lease_until         timestamptz,
    sent_at             timestamptz,
    created_at          timestamptz not null default now(),
    primary key (tenant_id, id),
    check ((direction = 'out') = (delivery_status is not null)),
    foreign key (tenant_id, conversation_id) references conversations (tenant_id, id) on delete cascade,
    foreign key (tenant_id, end_user_id) references end_users (tenant_id, id) on delete cascade
);
create index messages_conversation_idx on messages (tenant_id, conversation_id, id);
create index messages_undelivered_idx on messages (tenant_id, end_user_id, id)
    where delivery_status in ('pending', 'sending');
create index messages_created_idx on messages (tenant_id, created_at);
create index messages_rule_idx on messages (tenant_id, rule_id, created_at) where rule_id is not null;

create table events (
    tenant_id       uuid not null references tenants (id) on delete cascade,
    id              bigint generated always as identity,
    kind            text not null,
    actor_type      text not null check (actor_type in ('end_user', 'user', 'api', 'system')),
    actor_id        text,
    conversation_id uuid,
    end_user_id     uuid,
    data            jsonb not null default '{}',
    created_at      timestamptz not null default now(),
    primary key (tenant_id, id)
);
create index events_created_idx on events (tenant_id, created_at desc, id);
create index events_conversation_idx on events (tenant_id, conversation_id, id) where conversation_id is not null;
create index events_kind_idx on events (tenant_id, kind, id);

-- Raw updates as Telegram delivered them; (bot_id, update_id) makes redelivery harmless.
create table inbox (
    tenant_id    uuid not null,
    bot_id       uuid not null,
    update_id    bigint not null,
    payload      jsonb not null,
    status       text not null default 'processed' check (status in ('processed', 'ignored', 'failed')),
    error        text,
    received_at  timestamptz not null default now(),
    primary key (tenant_id, bot_id, update_id),
    foreign key (tenant_id, bot_id) references bots (tenant_id, id) on delete cascade
);
create index inbox_received_idx on inbox (tenant_id, received_at);

-- Statistics roll-ups (filled by a scheduled job).
create table stats_hourly (
    tenant_id        uuid not null references tenants (id) on delete cascade,
    hour             timestamptz not null,
    messages_in      bigint not null default 0,
    messages_out     bigint not null default 0,
    conversations    bigint not null default 0,
    handovers        bigint not null default 0,
    auto_answered    bigint not null default 0,
    active_users     bigint not null default 0,
    new_users        bigint not null default 0,
    computed_at      timestamptz not null default now(),
    primary key (tenant_id, hour)
);

create table stats_daily (
    tenant_id        uuid not null references tenants (id) on delete cascade,
    day              date not null,
    messages_in      bigint not null default 0,
    messages_out     bigint not null default 0,
    conversations    bigint not null default 0,
    handovers        bigint not null default 0,
    auto_answered    bigint not null default 0,
    active_users     bigint not null default 0,
    new_users        bigint not null default 0,
    computed_at      timestamptz not null default now(),
    primary key (tenant_id, day)
);

-- Cross-replica cache invalidation: a change to a tenant's configuration notifies every
-- app process, which drops its cached bot configuration for that tenant.
create function notify_tenant_config_changed() returns trigger language plpgsql as $$
begin
    perform pg_notify('switchboard_config', coalesce(new.tenant_id, old.tenant_id)::text);
    return null;
end;
$$;
create trigger bot_settings_changed after insert or update or delete on bot_settings
    for each row execute function notify_tenant_config_changed();
create trigger answer_rules_changed after insert or delete
    or update of title, answer, examples, keywords, priority, enabled, featured on answer_rules
    for each row execute function notify_tenant_config_changed();
create trigger menus_changed after insert or update or delete on menus
    for each row execute function notify_tenant_config_changed();
create trigger buttons_changed after insert or update or delete on buttons
    for each row execute function notify_tenant_config_changed();
create trigger commands_changed after insert or update or delete on commands
    for each row execute function notify_tenant_config_changed();
create trigger bots_changed after insert or delete
    or update of public_id, status, token_ciphertext, webhook_secret_hash, mode on bots
    for each row execute function notify_tenant_config_changed();
