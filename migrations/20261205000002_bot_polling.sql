-- Polling mode (`bots.mode = 'polling'`): a bot that cannot receive webhooks has its
-- updates fetched with getUpdates by exactly one worker at a time, the holder of the
-- bot's lease. The row holds that lease and the getUpdates offset: the update id after the
-- last one committed. A row of its own, so renewing the lease every few seconds touches
-- neither the bot's row (read by every webhook delivery) nor its configuration triggers.
create table bot_polling (
    tenant_id         uuid not null,
    bot_id            uuid not null,
    lease_owner       text,
    lease_until       timestamptz,
    update_offset     bigint,
    offset_updated_at timestamptz,
    primary key (tenant_id, bot_id),
    foreign key (tenant_id, bot_id) references bots (tenant_id, id) on delete cascade
);
-- Finding the polling bots whose lease is free.
create index bots_polling_idx on bots (tenant_id, id) where mode = 'polling' and status <> 'removed';
