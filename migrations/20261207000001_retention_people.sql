-- Retention and erasure delete end users; the days they were active stay counted (a
-- random id, pointing nowhere once the user is gone, is no personal data), so statistics
-- of past periods keep their numbers.
alter table stats_active_users drop constraint stats_active_users_tenant_id_end_user_id_fkey;
