-- The delivery scheduler (replaces one apalis job per update, and chat_pacing).
--
-- One row per chat that has messages to send, or was sent one within its pacing interval.
-- `ready_at` is when the chat may be sent its next message: its pacing (one per second,
-- one per three seconds in groups), a retry time, or — while a worker holds the chat —
-- when that worker's lease runs out. Workers take ready chats with `for update skip
-- locked`, bot by bot, within each bot's budget (bot_send_budget).
create table delivery_queue (
    tenant_id   uuid not null,
    end_user_id uuid not null,
    bot_id      uuid not null,
    ready_at    timestamptz not null default now(),
    -- The worker sending this chat's head message, if any (its lease ends at ready_at).
    lease_owner text,
    primary key (tenant_id, end_user_id),
    foreign key (tenant_id, end_user_id) references end_users (tenant_id, id) on delete cascade,
    foreign key (tenant_id, bot_id) references bots (tenant_id, id) on delete cascade
);
-- Bots with queued chats are found by a skip scan of this index, and each bot's ready
-- chats by a range scan of it.
create index delivery_queue_bot_ready_idx on delivery_queue (bot_id, ready_at);

-- Each bot's sending budget, shared by every worker: sends are spaced one interval apart
-- (1 / rate), and `next_slot_at` is the first free slot (a generic cell rate algorithm).
-- A 429 pauses the bot everywhere until `paused_until`.
create table bot_send_budget (
    tenant_id    uuid not null,
    bot_id       uuid not null,
    next_slot_at timestamptz not null default now(),
    paused_until timestamptz,
    primary key (tenant_id, bot_id),
    foreign key (tenant_id, bot_id) references bots (tenant_id, id) on delete cascade
);
insert into bot_send_budget (tenant_id, bot_id) select tenant_id, id from bots;

create function bots_send_budget() returns trigger language plpgsql as $$
begin
    insert into bot_send_budget (tenant_id, bot_id) values (new.tenant_id, new.id)
    on conflict do nothing;
    return new;
end $$;
create trigger bots_send_budget after insert on bots
    for each row execute function bots_send_budget();

-- Messages per second this bot may send (paid broadcasts allow more); null: the
-- platform's SWITCHBOARD_BOT_SEND_RATE.
alter table bots add column send_rate integer check (send_rate between 1 and 1000);

-- What the old queue held moves to the new one.
insert into delivery_queue (tenant_id, end_user_id, bot_id)
select distinct m.tenant_id, m.end_user_id, u.bot_id
from messages m
join end_users u on u.tenant_id = m.tenant_id and u.id = m.end_user_id
where m.delivery_status in ('pending', 'sending')
on conflict do nothing;
delete from apalis.jobs where job_type = 'switchboard::deliver';
drop table chat_pacing;
