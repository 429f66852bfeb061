-- How a rule is offered to users ("Did you mean…?" buttons, typical questions): a
-- question in their words. Null: the rule's first example (the title is internal).
alter table answer_rules add column question text check (question is null or length(question) between 1 and 64);
