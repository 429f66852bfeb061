-- Distributing Switchboard's schema with Citus (docs/scaling.md). Run once, as the
-- database owner, on the coordinator of a Citus cluster, after `switchboard migrate`
-- and before traffic:
--
--     psql "$DATABASE_URL" -f scripts/citus-distribute.sql
--
-- Every table of the `public` schema is listed here exactly once; a test
-- (isolation::every_table_could_be_distributed_by_tenant) reads PostgreSQL's catalog and
-- fails if a table is missing, if a distributed table has a unique key or a foreign key to
-- another distributed table without `tenant_id`, or if a reference table points into a
-- distributed one. Not run in CI: Citus cannot be installed on the development machine.

create extension if not exists citus;

begin;

-- Small, global tables, copied to every node: the organizations, people and their
-- sign-in records, and the routes from a webhook, a token or an invitation link to its
-- organization.
select create_reference_table('tenants');
select create_reference_table('users');
select create_reference_table('oauth_identities');
select create_reference_table('password_resets');
select create_reference_table('login_failures');
-- Sign-up rate buckets (a write per sign-up attempt: rare).
select create_reference_table('rate_buckets');
select create_reference_table('outbound_emails');
select create_reference_table('platform_events');
select create_reference_table('bot_routes');
select create_reference_table('live_telegram_bots');
select create_reference_table('api_token_routes');
select create_reference_table('invitation_routes');

-- Everything of an organization, by tenant_id and colocated: every query of one
-- organization runs on one node, joins included. A table comes after the tables its
-- foreign keys point to.
select create_distributed_table('bots', 'tenant_id');
select create_distributed_table('bot_settings', 'tenant_id', colocate_with => 'bots');
select create_distributed_table('bot_polling', 'tenant_id', colocate_with => 'bots');
select create_distributed_table('bot_send_budget', 'tenant_id', colocate_with => 'bots');
select create_distributed_table('answer_rules', 'tenant_id', colocate_with => 'bots');
select create_distributed_table('menus', 'tenant_id', colocate_with => 'bots');
select create_distributed_table('buttons', 'tenant_id', colocate_with => 'bots');
select create_distributed_table('commands', 'tenant_id', colocate_with => 'bots');
select create_distributed_table('canned_responses', 'tenant_id', colocate_with => 'bots');
select create_distributed_table('memberships', 'tenant_id', colocate_with => 'bots');
select create_distributed_table('api_tokens', 'tenant_id', colocate_with => 'bots');
select create_distributed_table('invitations', 'tenant_id', colocate_with => 'bots');
select create_distributed_table('end_users', 'tenant_id', colocate_with => 'bots');
select create_distributed_table('conversations', 'tenant_id', colocate_with => 'bots');
select create_distributed_table('messages', 'tenant_id', colocate_with => 'bots');
select create_distributed_table('deliveries', 'tenant_id', colocate_with => 'bots');
select create_distributed_table('attachments', 'tenant_id', colocate_with => 'bots');
select create_distributed_table('conversation_notes', 'tenant_id', colocate_with => 'bots');
select create_distributed_table('events', 'tenant_id', colocate_with => 'bots');
select create_distributed_table('delivery_queue', 'tenant_id', colocate_with => 'bots');
select create_distributed_table('inbox', 'tenant_id', colocate_with => 'bots');
select create_distributed_table('stats_hourly', 'tenant_id', colocate_with => 'bots');
select create_distributed_table('stats_active_users', 'tenant_id', colocate_with => 'bots');
select create_distributed_table('stats_rollup_state', 'tenant_id', colocate_with => 'bots');
select create_distributed_table('sentence_vectors', 'tenant_id', colocate_with => 'bots');

commit;
