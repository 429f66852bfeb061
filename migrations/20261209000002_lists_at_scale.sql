-- The desk's and the API's lists at the size of a big organization (a million
-- conversations, docs/performance.md): each list walks an index in its own order and
-- stops at its page, instead of sorting the tenant's whole history.

-- The API's list without a status: most recently active first.
create index conversations_recent_idx on conversations (tenant_id, last_message_at desc, id);
-- The desk's Waiting tab: longest waiting first, tests never there.
create index conversations_waiting_idx on conversations (tenant_id, waiting_since, id)
    where status = 'waiting' and not is_test;
-- A member's conversations (the desk's Mine, the API's assignee filter), by status or not.
drop index conversations_assignee_idx;
create index conversations_assignee_status_idx
    on conversations (tenant_id, assignee_id, status, last_message_at desc, id)
    where assignee_id is not null;
-- The desk's counters: assigned conversations, counted from the index alone.
create index conversations_assigned_count_idx on conversations (tenant_id, assignee_id)
    where status = 'assigned' and not is_test;
create index conversations_assignee_recent_idx
    on conversations (tenant_id, assignee_id, last_message_at desc, id)
    where assignee_id is not null;

-- Searching people by name (any part of it) on the desk: trigrams. pg_trgm ships with
-- PostgreSQL (contrib) and is a trusted extension, so the database owner may create it.
create extension if not exists pg_trgm;
create index end_users_names_trgm_idx on end_users using gin (
    (first_name || ' ' || coalesce(last_name, '') || ' ' || coalesce(username, '')) gin_trgm_ops);
