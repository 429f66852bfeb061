-- apalis notifies on every insert into its job table from a trigger. A transaction that
-- notifies takes a database-wide lock while it commits, so every webhook transaction would
-- commit one at a time. Switchboard wakes the workers itself after commit, coalesced
-- (see db::notify), and the workers also poll.
drop trigger if exists notify_workers on apalis.jobs;

-- Superseded by apalis_jobs_fetch_idx (type, priority, run_at) or duplicated by
-- unique_job_id; each one costs every job insert.
drop index if exists apalis.tidx;
drop index if exists apalis.sidx;
drop index if exists apalis.jtidx;
