-- Delivery state moves out of `messages` into a narrow table of its own.
--
-- Sending a reply used to update its `messages` row twice (`sending`, then `sent`), and
-- `delivery_status` was in two of the ten indexes of `messages` (one of them the
-- full-text GIN's table), so neither update was HOT: each wrote every index again, the
-- most PostgreSQL did per answered update (docs/performance.md). Now a message is
-- written once; its delivery — status, attempts, lease, retry time, error, Telegram's
-- message id, when it went out — is one row here, written when the message is, updated by
-- the scheduler (two small indexes, the undelivered one partial) and kept as the record.
create table deliveries (
    tenant_id           uuid not null,
    message_id          bigint not null,
    end_user_id         uuid not null,
    status              text not null default 'pending'
                        check (status in ('pending', 'sending', 'sent', 'failed')),
    -- Attempts so far (including the one in flight while `sending`).
    attempts            integer not null default 0,
    next_attempt_at     timestamptz,
    lease_until         timestamptz,
    error               text,
    telegram_message_id bigint,
    sent_at             timestamptz,
    primary key (tenant_id, message_id),
    foreign key (tenant_id, message_id) references messages (tenant_id, id) on delete cascade
) with (fillfactor = 70);
-- Each chat's undelivered messages in order (the scheduler's head of a chat).
create index deliveries_undelivered_idx on deliveries (tenant_id, end_user_id, message_id)
    where status in ('pending', 'sending');
-- The log's and dashboards' failed deliveries.
create index deliveries_failed_idx on deliveries (tenant_id, message_id)
    where status = 'failed';
select switchboard_isolate('deliveries');

insert into deliveries (tenant_id, message_id, end_user_id, status, attempts, next_attempt_at,
                        lease_until, error, telegram_message_id, sent_at)
select tenant_id, id, end_user_id, delivery_status, attempts, next_attempt_at, lease_until,
       delivery_error, telegram_message_id, sent_at
from messages where direction = 'out';

-- What counted failed deliveries by reading messages reads them here now.
create or replace function stats_metrics(p_tenant uuid, p_from timestamptz, p_to timestamptz)
returns table (hour timestamptz, metric text, dim text, value bigint)
language sql stable as $$
    with msg as (
        select m.created_at, m.direction, m.sender, m.kind, m.rule_id, m.match,
               d.status as delivery_status, m.end_user_id
        from messages m
        left join deliveries d on d.tenant_id = m.tenant_id and d.message_id = m.id
        join conversations c on c.tenant_id = m.tenant_id and c.id = m.conversation_id
        where m.tenant_id = p_tenant and m.created_at >= p_from and m.created_at < p_to
          and not c.is_test
    ),
    facts (at, metric, dim) as (
        select m.created_at, 'messages_in',
               coalesce((select case when u.language_code like 'ru%' then 'ru'
                                     when u.language_code like 'en%' then 'en' end
                         from end_users u where u.tenant_id = p_tenant and u.id = m.end_user_id),
                        'other')
        from msg m where m.direction = 'in'
        union all
        select m.created_at, 'messages_out', m.sender from msg m where m.direction = 'out'
        union all
        select m.created_at, 'delivery_failed', '' from msg m
        where m.direction = 'out' and m.delivery_status = 'failed'
        union all
        select m.created_at, 'commands', '' from msg m where m.direction = 'in' and m.kind = 'command'
        union all
        select m.created_at, 'buttons', '' from msg m where m.direction = 'in' and m.kind = 'callback'
        -- Questions the matcher weighed, and whether the bot answered them itself.
        union all
        select m.created_at, 'questions',
               case when m.match ->> 'rule_id' is not null then 'answered' else 'not_answered' end
        from msg m where m.direction = 'in' and m.match is not null
        union all
        select m.created_at, 'rule_hits', m.rule_id::text from msg m
        where m.direction = 'in' and m.rule_id is not null
        union all
        select e.created_at,
               case e.kind
                   when 'conversation.handover' then 'handovers'
                   when 'suggestion.accepted' then 'suggestions'
                   when 'suggestion.rejected' then 'suggestions'
                   when 'answer.feedback' then 'feedback'
                   when 'conversation.rated' then 'ratings'
                   when 'conversation.closed' then 'conversations_closed'
                   when 'conversation.claimed' then 'claims'
               end,
               case e.kind
                   when 'conversation.handover' then coalesce(e.data ->> 'reason', 'unknown')
                   when 'suggestion.accepted' then 'accepted'
                   when 'suggestion.rejected' then 'rejected'
                   when 'answer.feedback' then
                       case when (e.data ->> 'helped')::boolean then 'helped' else 'not_helped' end
                   when 'conversation.rated' then coalesce(e.data ->> 'rating', '')
                   else ''
               end
        from events e
        where e.tenant_id = p_tenant and e.created_at >= p_from and e.created_at < p_to
          and e.kind in ('conversation.handover', 'suggestion.accepted', 'suggestion.rejected',
                         'answer.feedback', 'conversation.rated', 'conversation.closed',
                         'conversation.claimed')
          and not exists (select 1 from conversations c
                          where c.tenant_id = e.tenant_id and c.id = e.conversation_id and c.is_test)
        union all
        select c.opened_at, 'conversations', '' from conversations c
        where c.tenant_id = p_tenant and c.opened_at >= p_from and c.opened_at < p_to and not c.is_test
        union all
        select u.first_seen_at, 'new_users', '' from end_users u
        join bots b on b.tenant_id = u.tenant_id and b.id = u.bot_id
        where u.tenant_id = p_tenant and u.first_seen_at >= p_from and u.first_seen_at < p_to
          and b.status <> 'sandbox'
    )
    select date_trunc('hour', at, 'UTC'), metric, dim, count(*)::bigint
    from facts group by 1, 2, 3
$$;

alter table messages drop constraint messages_check;
drop index messages_undelivered_idx;
drop index messages_delivery_created_idx;
alter table messages
    drop column delivery_status,
    drop column delivery_error,
    drop column attempts,
    drop column next_attempt_at,
    drop column lease_until,
    drop column sent_at;
