-- "Helped? / Didn't help" buttons under the bot's answers.
alter table bot_settings add column feedback_enabled boolean not null default false;
