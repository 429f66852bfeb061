-- The tenant log shows its members' sign-ins (platform events) newest first.
create index platform_events_user_created_idx on platform_events (user_id, created_at);
