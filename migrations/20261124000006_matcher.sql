-- The matcher: words a rule requires, regular expressions that answer outright, the
-- tenant's synonyms, and the suggestion band's new default.

alter table answer_rules add column required text[] not null default '{}';
alter table answer_rules add column patterns text[] not null default '{}';

-- Each entry is one group of words that mean the same ("wifi, wi-fi, интернет").
alter table bot_settings add column synonyms text[] not null default '{}';

alter table bot_settings alter column suggest_threshold set default 0.2;
update bot_settings set suggest_threshold = 0.2 where suggest_threshold = 0.3;
