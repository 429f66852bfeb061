-- The organization's words in other languages than its default one, beside the default
-- words: {"ru": {"answer": "…", "question": "…"}}. A Telegram user sees their language
-- where it was written, the default words elsewhere.
alter table answer_rules add column translations jsonb not null default '{}'
    check (jsonb_typeof(translations) = 'object');
alter table menus add column translations jsonb not null default '{}'
    check (jsonb_typeof(translations) = 'object');
alter table buttons add column translations jsonb not null default '{}'
    check (jsonb_typeof(translations) = 'object');
alter table commands add column translations jsonb not null default '{}'
    check (jsonb_typeof(translations) = 'object');
