-- Rate-limit buckets shared by every process (today: sign-ups per client address, so N
-- replicas do not allow N times the limit). Not tenant data: no tenant_id, no RLS.
create table rate_buckets (
    key text primary key,
    tokens double precision not null,
    at timestamptz not null default now()
);
create index rate_buckets_at_idx on rate_buckets (at);
