-- apalis fetches jobs by type and status, oldest first; without this index every poll
-- scans the whole job table once it grows.
create index if not exists apalis_jobs_fetch_idx
    on apalis.jobs (job_type, priority desc, run_at)
    where status in ('Pending', 'Failed');
-- Purging finished jobs and finding a chat's queued job.
create index if not exists apalis_jobs_done_idx on apalis.jobs (done_at) where status in ('Done', 'Killed');
