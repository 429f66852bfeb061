-- When each chat may next be sent a message (Telegram allows about one per second per
-- chat). In the database, so the spacing holds whichever worker sends; in a table of its
-- own, so that delivery never waits on the end user's row, which every incoming update of
-- the chat locks while it is processed.
create table chat_pacing (
    tenant_id    uuid not null,
    end_user_id  uuid not null,
    next_send_at timestamptz not null,
    primary key (tenant_id, end_user_id),
    foreign key (tenant_id, end_user_id) references end_users (tenant_id, id) on delete cascade
);
