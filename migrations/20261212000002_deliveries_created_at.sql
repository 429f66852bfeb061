-- A delivery records when its message was written (the same instant as the message's
-- `created_at`: both take the transaction's time), so that failed deliveries are listed
-- newest first and counted by period from this table's own index — whatever their number
-- — and the delivery gauges need not read `messages`.
alter table deliveries add column created_at timestamptz not null default now();
update deliveries d set created_at = m.created_at
from messages m
where m.tenant_id = d.tenant_id and m.id = d.message_id;
drop index deliveries_failed_idx;
create index deliveries_failed_idx on deliveries (tenant_id, created_at desc, message_id desc)
    where status = 'failed';
