-- The operator desk: canned responses, internal notes, operators' attachments, ratings.

create table canned_responses (
    tenant_id   uuid not null references tenants (id) on delete cascade,
    id          uuid not null,
    -- Typed after "/" in the reply box, e.g. "hello" for /hello.
    shortcut    text not null check (shortcut ~ '^[a-z0-9_-]{1,32}$'),
    title       text not null check (length(title) between 1 and 100),
    text        text not null check (length(text) between 1 and 4096),
    created_at  timestamptz not null default now(),
    updated_at  timestamptz not null default now(),
    primary key (tenant_id, id),
    unique (tenant_id, shortcut)
);
create trigger canned_responses_updated_at before update on canned_responses
    for each row execute function set_updated_at();

-- Notes operators leave on a conversation: never sent to the user.
create table conversation_notes (
    tenant_id       uuid not null,
    id              bigint generated always as identity,
    conversation_id uuid not null,
    author_id       uuid references users (id) on delete set null,
    text            text not null check (length(text) between 1 and 4096),
    created_at      timestamptz not null default now(),
    primary key (tenant_id, id),
    foreign key (tenant_id, conversation_id) references conversations (tenant_id, id) on delete cascade
);
create index conversation_notes_conversation_idx on conversation_notes (tenant_id, conversation_id, id);

-- Files operators send (sendPhoto / sendDocument), kept with the message.
create table attachments (
    tenant_id    uuid not null,
    message_id   bigint not null,
    file_name    text not null,
    content_type text not null,
    size         integer not null check (size between 1 and 20971520),
    data         bytea not null,
    created_at   timestamptz not null default now(),
    primary key (tenant_id, message_id),
    foreign key (tenant_id, message_id) references messages (tenant_id, id) on delete cascade
);

-- Asking the user to rate the help after closing.
alter table bot_settings add column rating_enabled boolean not null default false;
alter table bot_settings add column rating_text text;

-- The desk lists a tenant's queue and a user's earlier conversations.
create index conversations_assignee_idx on conversations (tenant_id, assignee_id, status) where assignee_id is not null;
