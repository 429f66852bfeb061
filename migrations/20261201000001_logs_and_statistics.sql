-- Logs and statistics: full-text search over messages, the indexes the log's filters
-- use, per-tenant retention, and roll-up tables in a narrow (metric, dimension) shape.

-- PostgreSQL's 'russian' configuration stems Cyrillic words with the Russian Snowball
-- stemmer and ASCII words with the English one, so one vector serves both languages.
alter table messages add column search tsvector
    generated always as (to_tsvector('russian', text)) stored;
create index messages_search_idx on messages using gin (search);

-- The log's filters (each index ends in created_at for keyset pagination).
create index messages_end_user_created_idx on messages (tenant_id, end_user_id, created_at);
create index messages_operator_created_idx on messages (tenant_id, operator_id, created_at)
    where operator_id is not null;
create index messages_delivery_created_idx on messages (tenant_id, delivery_status, created_at)
    where direction = 'out';
create index messages_conversation_created_idx on messages (tenant_id, conversation_id, created_at);
create index events_end_user_created_idx on events (tenant_id, end_user_id, created_at)
    where end_user_id is not null;
create index events_actor_created_idx on events (tenant_id, actor_id, created_at)
    where actor_id is not null;
create index events_kind_created_idx on events (tenant_id, kind, created_at);
create index events_conversation_created_idx on events (tenant_id, conversation_id, created_at)
    where conversation_id is not null;
create index events_rule_created_idx on events (tenant_id, (data ->> 'rule_id'), created_at)
    where data ? 'rule_id';
create index conversations_opened_idx on conversations (tenant_id, opened_at);
create index end_users_first_seen_idx on end_users (tenant_id, first_seen_at);

-- Retention: messages and events older than retention_days are deleted (null: kept),
-- raw updates after raw_retention_days.
alter table bot_settings add column retention_days integer
    check (retention_days is null or retention_days between 1 and 3650);
alter table bot_settings add column raw_retention_days integer not null default 30
    check (raw_retention_days between 1 and 3650);

-- The roll-ups. The first schema's wide tables were never written; the narrow shape
-- takes new metrics and breakdowns (by rule, reason, language…) without migrations.
drop table stats_hourly;
drop table stats_daily;

-- One row per tenant, UTC hour, metric and dimension ('' when the metric has none).
-- Re-computing an hour replaces its rows, so a roll-up is idempotent.
create table stats_hourly (
    tenant_id uuid not null references tenants (id) on delete cascade,
    hour      timestamptz not null,
    metric    text not null,
    dim       text not null default '',
    value     bigint not null,
    primary key (tenant_id, hour, metric, dim)
);
create index stats_hourly_metric_idx on stats_hourly (tenant_id, metric, hour);

-- Who wrote to the bot on which day (the tenant's local day): distinct active users over
-- any period are counted from here rather than from millions of messages.
create table stats_active_users (
    tenant_id   uuid not null,
    day         date not null,
    end_user_id uuid not null,
    primary key (tenant_id, day, end_user_id),
    foreign key (tenant_id, end_user_id) references end_users (tenant_id, id) on delete cascade
);

-- How far each tenant's hours have been rolled up; the dashboard computes the hours after
-- it live.
create table stats_rollup_state (
    tenant_id   uuid primary key references tenants (id) on delete cascade,
    rolled_until timestamptz not null,
    updated_at  timestamptz not null default now()
);

-- What happened in a tenant between two instants, counted per UTC hour, metric and
-- dimension. The roll-up job stores it; the dashboard calls it for the hours not rolled
-- up yet, so both count the same way. Test traffic (the "Try it" sandbox) is left out.
create function stats_metrics(p_tenant uuid, p_from timestamptz, p_to timestamptz)
returns table (hour timestamptz, metric text, dim text, value bigint)
language sql stable as $$
    with msg as (
        select m.created_at, m.direction, m.sender, m.kind, m.rule_id, m.match,
               m.delivery_status, m.end_user_id
        from messages m
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
