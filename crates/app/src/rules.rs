//! Answer rules: what the bot answers and to which questions — written one at a time,
//! switched on and off in bulk, taught new examples from unanswered questions, imported
//! all or nothing.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};
use switchboard_core::validate::{self, Invalid, Problem};
use switchboard_core::{Event, Permission, RuleId, Translations};
use switchboard_db::config::{self, ButtonOwner, ButtonRow};
use switchboard_db::rules::{self, RuleFilter, RuleInput, RuleRow};
use switchboard_db::DbError;
use uuid::Uuid;

use crate::buttons::{validate_rows, ButtonInput};
use crate::{commit, record, App, AppError, AppResult, Ctx};

/// A whole rule as written; `buttons: None` leaves a rule's buttons as they are.
#[derive(Clone, Debug)]
pub struct RuleDraft {
    pub title: String,
    pub question: Option<String>,
    pub answer: String,
    pub examples: Vec<String>,
    pub keywords: Vec<String>,
    pub required: Vec<String>,
    pub patterns: Vec<String>,
    pub priority: i32,
    pub enabled: bool,
    pub featured: bool,
    /// `plain` or `html`.
    pub format: String,
    pub buttons: Option<Vec<Vec<ButtonInput>>>,
    /// `question` and `answer` in other languages.
    pub translations: Translations,
}

impl Default for RuleDraft {
    fn default() -> Self {
        RuleDraft {
            title: String::new(),
            question: None,
            answer: String::new(),
            examples: Vec::new(),
            keywords: Vec::new(),
            required: Vec::new(),
            patterns: Vec::new(),
            priority: 0,
            enabled: true,
            featured: false,
            format: "plain".into(),
            buttons: None,
            translations: Translations::new(),
        }
    }
}

/// A partial change: `None` keeps what is stored; `question: Some(None)` clears it.
#[derive(Clone, Debug, Default)]
pub struct RuleChange {
    pub title: Option<String>,
    pub question: Option<Option<String>>,
    pub answer: Option<String>,
    pub examples: Option<Vec<String>>,
    pub keywords: Option<Vec<String>>,
    pub required: Option<Vec<String>>,
    pub patterns: Option<Vec<String>>,
    pub priority: Option<i32>,
    pub enabled: Option<bool>,
    pub featured: Option<bool>,
    pub format: Option<String>,
    pub buttons: Option<Vec<Vec<ButtonInput>>>,
    pub translations: Option<Translations>,
}

/// A rule and its buttons.
pub struct Rule {
    pub rule: RuleRow,
    pub buttons: Vec<ButtonRow>,
}

/// Trims, drops empty and repeated items — in linear time, so a huge list costs little
/// before its length is refused.
pub fn clean_list(items: &[String]) -> Vec<String> {
    let mut seen = HashSet::with_capacity(items.len().min(4096));
    let mut out = Vec::new();
    for i in items {
        let t = i.trim();
        if !t.is_empty() && seen.insert(t) {
            out.push(t.to_string());
        }
    }
    out
}

/// A question as given: trimmed, `None` when empty.
pub fn clean_question(q: Option<&str>) -> Option<String> {
    q.map(str::trim).filter(|q| !q.is_empty()).map(String::from)
}

/// Lists longer than this many items are refused before anything else is done with
/// them (a tenth of a second of work at most, whatever is sent).
const MAX_RAW_ITEMS: usize = 10_000;

/// The most examples one rule may have.
pub const MAX_RULE_EXAMPLES: usize = 1000;

/// The most rules an organization may have, and the most examples over all of them:
/// every process holds each example, and with the semantic stage its vector (1.5 KB), in
/// memory, and encodes each new one once (~9 ms of a core). Counted after each change of
/// rules, before it is committed (`within_quota`).
pub const MAX_RULES: i64 = 5_000;
pub const MAX_EXAMPLES: i64 = 50_000;

/// Refuses the change of rules made in `tx` if it takes the organization past its
/// limits. Parallel changes are counted one after another, so they cannot pass them
/// together. `field`: where an examples problem is shown.
async fn within_quota(tx: &mut crate::Tx, ctx: &Ctx, field: &'static str) -> AppResult<()> {
    let (count, examples) = rules::totals_locked(tx, ctx.tenant).await?;
    if count > MAX_RULES {
        return Err(AppError::conflict(
            None,
            Problem::coded(
                "rules_quota",
                format!("an organization may have at most {MAX_RULES} rules"),
            )
            .with("max", MAX_RULES),
        ));
    }
    if examples > MAX_EXAMPLES {
        return Err(AppError::conflict(
            Some(field),
            Problem::coded(
                "examples_quota",
                format!(
                    "an organization's rules may have at most {MAX_EXAMPLES} examples in all \
                     (this change makes {examples})"
                ),
            )
            .with("max", MAX_EXAMPLES)
            .with("count", examples),
        ));
    }
    Ok(())
}

fn input_of(d: &RuleDraft, errors: &mut Invalid) -> RuleInput {
    let list = |field: &str, items: &[String], errors: &mut Invalid| {
        if items.len() > MAX_RAW_ITEMS {
            errors.add(field, Problem::new("too_many").with("max", MAX_RAW_ITEMS));
            return Vec::new();
        }
        clean_list(items)
    };
    RuleInput {
        title: d.title.trim().to_string(),
        question: clean_question(d.question.as_deref()),
        answer: d.answer.trim().to_string(),
        examples: list("examples", &d.examples, errors),
        keywords: list("keywords", &d.keywords, errors),
        required: list("required", &d.required, errors),
        patterns: list("patterns", &d.patterns, errors),
        priority: d.priority,
        enabled: d.enabled,
        featured: d.featured,
        format: d.format.clone(),
        translations: d
            .translations
            .cleaned(&[("question", 64), ("answer", 20_000)], "", errors),
    }
}

/// Checks a rule as it will be stored.
pub fn validate_rule(r: &RuleInput, errors: &mut Invalid) {
    errors.check("title", validate::text(&r.title, 200));
    if let Some(q) = &r.question {
        errors.check("question", validate::text(q, 64));
    }
    errors.check("answer", validate::text(&r.answer, 20_000));
    errors.check(
        "examples",
        validate::text_list(&r.examples, MAX_RULE_EXAMPLES, 500),
    );
    errors.check("keywords", validate::text_list(&r.keywords, 200, 100));
    errors.check("required", validate::text_list(&r.required, 20, 100));
    let patterns_ok = validate::text_list(&r.patterns, 20, 300);
    if patterns_ok.is_ok() {
        for p in &r.patterns {
            if let Err(e) = regex_lite::Regex::new(p) {
                errors.add(
                    "patterns",
                    Problem::coded(
                        "regex",
                        format!("{p:?} is not a valid regular expression: {e}"),
                    )
                    .with("pattern", p),
                );
            }
        }
    }
    errors.check("patterns", patterns_ok);
    match r.format.as_str() {
        "plain" => {}
        "html" => {
            if let Err(e) = switchboard_core::format::check_telegram_html(&r.answer) {
                errors.add("answer", e.problem());
            }
            r.translations.check("answer", "", errors, |text| {
                switchboard_core::format::check_telegram_html(text).map_err(|e| e.problem())
            });
        }
        _ => errors.add(
            "format",
            Problem::coded("format_mode", "must be plain or html"),
        ),
    }
}

/// Rules (with search and filters) and all the tenant's buttons.
pub async fn list(
    app: &App,
    ctx: &Ctx,
    filter: &RuleFilter,
) -> AppResult<(Vec<RuleRow>, Vec<ButtonRow>)> {
    ctx.require(Permission::ReadConfig)?;
    let mut db = app.read(ctx.tenant).await?;
    let rows = rules::list(&mut *db, ctx.tenant, filter).await?;
    let buttons = config::list_buttons(&mut *db, ctx.tenant).await?;
    Ok((rows, buttons))
}

/// How often each rule answered (the list's "hits").
pub async fn hit_counts(app: &App, ctx: &Ctx) -> AppResult<std::collections::HashMap<RuleId, i64>> {
    ctx.require(Permission::ReadConfig)?;
    Ok(rules::hit_counts(&mut *app.read(ctx.tenant).await?, ctx.tenant).await?)
}

/// Below this confidence an answer is listed with the unanswered questions, for an admin
/// to check (a wrong answer is otherwise silent: the user got one).
pub const UNSURE_BELOW: f32 = 0.75;

/// Users' questions of the last `days` days that no rule answered, that a rule answered
/// unsure (below [`UNSURE_BELOW`]), or whose answer did not help, newest first.
pub async fn unanswered(
    app: &App,
    ctx: &Ctx,
    days: i32,
    limit: i64,
) -> AppResult<Vec<rules::Unanswered>> {
    ctx.require(Permission::ReadConfig)?;
    let mut db = app.read(ctx.tenant).await?;
    Ok(rules::unanswered(&mut *db, ctx.tenant, days, limit, UNSURE_BELOW).await?)
}

/// Every rule, for an export.
pub async fn all(app: &App, ctx: &Ctx) -> AppResult<Vec<RuleRow>> {
    ctx.require(Permission::ReadConfig)?;
    Ok(rules::all(&mut *app.read(ctx.tenant).await?, ctx.tenant).await?)
}

pub async fn get(app: &App, ctx: &Ctx, id: RuleId) -> AppResult<Rule> {
    ctx.require(Permission::ReadConfig)?;
    let mut db = app.read(ctx.tenant).await?;
    let rule = rules::get(&mut *db, ctx.tenant, id).await?;
    let buttons = config::rule_buttons(&mut *db, ctx.tenant, id).await?;
    Ok(Rule { rule, buttons })
}

/// Creates the rule (`id: None`) or replaces it with the draft.
async fn store(app: &App, ctx: &Ctx, id: Option<RuleId>, draft: &RuleDraft) -> AppResult<Rule> {
    let mut errors = Invalid::new();
    let input = input_of(draft, &mut errors);
    validate_rule(&input, &mut errors);
    let buttons = match &draft.buttons {
        Some(rows) => {
            let mut db = app.read(ctx.tenant).await?;
            Some(validate_rows(&mut db, ctx.tenant, rows, "buttons", &mut errors).await?)
        }
        None => None,
    };
    errors.into_result()?;
    let rule_id = id.unwrap_or_default();
    let mut tx = app.begin(ctx.tenant).await?;
    let row = match id {
        Some(id) => rules::update(&mut *tx, ctx.tenant, id, &input).await?,
        None => rules::insert(&mut *tx, ctx.tenant, rule_id, &input).await?,
    };
    if let Some(rows) = &buttons {
        config::replace_buttons(&mut tx, ctx.tenant, ButtonOwner::Rule(rule_id), rows).await?;
    }
    within_quota(&mut tx, ctx, "examples").await?;
    // Checked under the quota's lock, after the write: parallel saves of one title (a
    // double submit, the browser's Back and Save again) cannot both pass.
    if rules::title_taken(&mut *tx, ctx.tenant, &row.title, rule_id).await? {
        return Err(AppError::conflict(
            Some("title"),
            Problem::coded("title_taken", "another rule already has this title"),
        ));
    }
    let (rule_id_uuid, title) = (rule_id.0, row.title.clone());
    let event = match id {
        Some(_) => Event::RuleUpdated {
            rule_id: rule_id_uuid,
            title,
        },
        None => Event::RuleCreated {
            rule_id: rule_id_uuid,
            title,
        },
    };
    record(&mut tx, ctx, event).await?;
    commit(tx).await?;
    app.config_changed(ctx.tenant, false);
    let buttons =
        config::rule_buttons(&mut *app.read(ctx.tenant).await?, ctx.tenant, rule_id).await?;
    Ok(Rule { rule: row, buttons })
}

pub async fn create(app: &App, ctx: &Ctx, draft: RuleDraft) -> AppResult<Rule> {
    ctx.require(Permission::WriteConfig)?;
    store(app, ctx, None, &draft).await
}

/// Replaces a rule with the draft (the editor's save).
pub async fn replace(app: &App, ctx: &Ctx, id: RuleId, draft: RuleDraft) -> AppResult<Rule> {
    ctx.require(Permission::WriteConfig)?;
    rules::get(&mut *app.read(ctx.tenant).await?, ctx.tenant, id).await?;
    store(app, ctx, Some(id), &draft).await
}

/// Changes the fields given.
pub async fn update(app: &App, ctx: &Ctx, id: RuleId, change: RuleChange) -> AppResult<Rule> {
    ctx.require(Permission::WriteConfig)?;
    let current = rules::get(&mut *app.read(ctx.tenant).await?, ctx.tenant, id).await?;
    let draft = RuleDraft {
        title: change.title.unwrap_or(current.title),
        question: change.question.unwrap_or(current.question),
        answer: change.answer.unwrap_or(current.answer),
        examples: change.examples.unwrap_or(current.examples),
        keywords: change.keywords.unwrap_or(current.keywords),
        required: change.required.unwrap_or(current.required),
        patterns: change.patterns.unwrap_or(current.patterns),
        priority: change.priority.unwrap_or(current.priority),
        enabled: change.enabled.unwrap_or(current.enabled),
        featured: change.featured.unwrap_or(current.featured),
        format: change.format.unwrap_or(current.format),
        buttons: change.buttons,
        translations: change.translations.unwrap_or(current.translations),
    };
    store(app, ctx, Some(id), &draft).await
}

/// Deletes a rule and the buttons that showed it; returns what it was.
pub async fn delete(app: &App, ctx: &Ctx, id: RuleId) -> AppResult<RuleRow> {
    ctx.require(Permission::WriteConfig)?;
    let mut tx = app.begin(ctx.tenant).await?;
    let rule = rules::get(&mut *tx, ctx.tenant, id).await?;
    rules::delete(&mut *tx, ctx.tenant, id).await?;
    let event = Event::RuleDeleted {
        rule_id: id.0,
        title: rule.title.clone(),
    };
    record(&mut tx, ctx, event).await?;
    commit(tx).await?;
    app.config_changed(ctx.tenant, false);
    Ok(rule)
}

/// Switches rules on or off; returns how many changed.
pub async fn set_enabled(app: &App, ctx: &Ctx, ids: &[RuleId], enabled: bool) -> AppResult<u64> {
    ctx.require(Permission::WriteConfig)?;
    if ids.len() > MAX_RAW_ITEMS {
        return Err(AppError::invalid(
            "ids",
            Problem::new("too_many").with("max", MAX_RAW_ITEMS),
        ));
    }
    let mut tx = app.begin(ctx.tenant).await?;
    let changed = rules::set_enabled(&mut *tx, ctx.tenant, ids, enabled).await?;
    let rule_ids = ids.iter().map(|r| r.0).collect();
    let event = if enabled {
        Event::RulesEnabled { rule_ids, changed }
    } else {
        Event::RulesDisabled { rule_ids, changed }
    };
    record(&mut tx, ctx, event).await?;
    commit(tx).await?;
    app.config_changed(ctx.tenant, false);
    Ok(changed)
}

/// Teaches a rule an example (from the unanswered questions); returns the rule.
pub async fn add_example(app: &App, ctx: &Ctx, rule: RuleId, text: &str) -> AppResult<RuleRow> {
    ctx.require(Permission::WriteConfig)?;
    let text = text.trim();
    if let Err(p) = validate::text(text, 500) {
        return Err(AppError::invalid("text", p));
    }
    let mut tx = app.begin(ctx.tenant).await?;
    let row = rules::add_example(&mut *tx, ctx.tenant, rule, text).await?;
    if row.examples.len() > MAX_RULE_EXAMPLES {
        return Err(AppError::invalid(
            "text",
            Problem::coded(
                "rule_examples_full",
                format!(
                    "the rule already has {MAX_RULE_EXAMPLES} examples, the most a rule may have"
                ),
            )
            .with("max", MAX_RULE_EXAMPLES),
        ));
    }
    within_quota(&mut tx, ctx, "text").await?;
    let event = Event::RuleExampleAdded {
        rule_id: rule.0,
        example: text.to_string(),
    };
    record(&mut tx, ctx, event).await?;
    commit(tx).await?;
    app.config_changed(ctx.tenant, false);
    Ok(row)
}

/// A rule as exported and imported (JSON; CSV has the same columns, lists joined by
/// newlines).
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct PortableRule {
    #[serde(default)]
    pub id: Option<Uuid>,
    pub title: String,
    pub answer: String,
    #[serde(default)]
    pub examples: Vec<String>,
    #[serde(default)]
    pub keywords: Vec<String>,
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default)]
    pub priority: i32,
    #[serde(default = "plain")]
    pub format: String,
    /// `question` and `answer` in other languages; absent keeps what a rule has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub translations: Option<Translations>,
}

fn yes() -> bool {
    true
}

fn plain() -> String {
    "plain".into()
}

impl From<RuleRow> for PortableRule {
    fn from(r: RuleRow) -> Self {
        PortableRule {
            id: Some(r.id.0),
            title: r.title,
            answer: r.answer,
            examples: r.examples,
            keywords: r.keywords,
            enabled: r.enabled,
            priority: r.priority,
            format: r.format,
            translations: Some(r.translations).filter(|t| !t.is_empty()),
        }
    }
}

/// At most this many rules in one import.
pub const MAX_IMPORT: usize = 5_000;

/// Imports all rules or none: each is matched by id, then by exact title, else created.
/// Returns (created, updated). Refusals name the rule by its position (`rules[i].field`).
pub async fn import(app: &App, ctx: &Ctx, incoming: Vec<PortableRule>) -> AppResult<(u64, u64)> {
    ctx.require(Permission::WriteConfig)?;
    if incoming.len() > MAX_IMPORT {
        return Err(AppError::invalid(
            "rules",
            Problem::new("too_many").with("max", MAX_IMPORT),
        ));
    }
    // Validating thousands of rules is CPU work: off the async threads.
    let (problems, inputs) = tokio::task::spawn_blocking(move || {
        let mut problems = Invalid::new();
        let mut inputs = Vec::new();
        for (i, r) in incoming.into_iter().enumerate() {
            let draft = RuleDraft {
                title: r.title,
                answer: r.answer,
                examples: r.examples,
                keywords: r.keywords,
                priority: r.priority,
                enabled: r.enabled,
                format: r.format,
                translations: r.translations.clone().unwrap_or_default(),
                ..Default::default()
            };
            let mut errors = Invalid::new();
            let input = input_of(&draft, &mut errors);
            validate_rule(&input, &mut errors);
            for e in errors.errors {
                problems.add(
                    &format!("rules[{i}].{}", e.field),
                    e.problem.with("item", i + 1),
                );
            }
            inputs.push((i, r.id, r.translations.is_some(), input));
        }
        (problems, inputs)
    })
    .await
    .map_err(|e| {
        tracing::error!(error = %e, "import validation failed");
        AppError::Internal
    })?;
    problems.into_result()?;
    let mut tx = app.begin(ctx.tenant).await?;
    let (mut created, mut updated) = (0, 0);
    for (i, id, has_translations, input) in &inputs {
        let existing = match id {
            Some(id) => match rules::get(&mut *tx, ctx.tenant, RuleId(*id)).await {
                Ok(r) => Some(r),
                Err(DbError::NotFound) => None,
                Err(e) => return Err(e.into()),
            },
            None => None,
        };
        let existing = match existing {
            Some(r) => Some(r),
            None => rules::find_by_title(&mut *tx, ctx.tenant, &input.title).await?,
        };
        match existing {
            Some(r) => {
                // What the portable format does not carry stays as it was.
                let mut input = input.clone();
                input.featured = r.featured;
                input.required = r.required.clone();
                input.patterns = r.patterns.clone();
                input.question = r.question.clone();
                if !has_translations {
                    // Kept as they are, and checked as the imported rule now is (an
                    // import may turn a rule's answers into HTML).
                    input.translations = r.translations.clone();
                    let mut errors = Invalid::new();
                    validate_rule(&input, &mut errors);
                    if let Some(e) = errors.errors.into_iter().next() {
                        return Err(AppError::invalid(
                            &format!("rules[{i}].{}", e.field),
                            e.problem.with("item", i + 1),
                        ));
                    }
                }
                rules::update(&mut *tx, ctx.tenant, r.id, &input).await?;
                updated += 1;
            }
            None => {
                rules::insert(&mut *tx, ctx.tenant, RuleId::new(), input).await?;
                created += 1;
            }
        }
    }
    within_quota(&mut tx, ctx, "rules").await?;
    let event = Event::RulesImported { created, updated };
    record(&mut tx, ctx, event).await?;
    commit(tx).await?;
    app.config_changed(ctx.tenant, false);
    Ok((created, updated))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_are_cleaned_in_order_without_repeats() {
        let items: Vec<String> = [" a ", "b", "", "a", "c ", "b"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(clean_list(&items), ["a", "b", "c"]);
    }

    #[test]
    fn a_huge_list_is_refused_before_it_is_cleaned() {
        let draft = RuleDraft {
            examples: (0..100_000).map(|i| format!("example {i}")).collect(),
            ..Default::default()
        };
        let mut errors = Invalid::new();
        let input = input_of(&draft, &mut errors);
        assert!(input.examples.is_empty());
        assert_eq!(errors.errors[0].field, "examples");
        assert_eq!(errors.errors[0].problem.code, "too_many");
    }
}
