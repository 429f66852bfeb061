-- The statistics' team numbers read every conversation opened in the period: a covering
-- index lets them come from the index alone.
create index conversations_opened_team_idx on conversations (tenant_id, opened_at)
    include (is_test, waiting_since, assigned_at, first_response_at, closed_at, closed_by,
             assignee_id, rating);
drop index conversations_opened_idx;
