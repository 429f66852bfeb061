//! Answer rules.

use chrono::{DateTime, Utc};
use sqlx::PgExecutor;
use switchboard_core::{RuleId, TenantId, Translations};

use crate::error::OptionExt;
use crate::{DbError, Result};

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct RuleRow {
    pub id: RuleId,
    pub title: String,
    /// The question as users see it (suggestion buttons); `None`: the first example.
    pub question: Option<String>,
    pub answer: String,
    pub examples: Vec<String>,
    pub keywords: Vec<String>,
    /// Words that must all be in a message for the rule to answer.
    pub required: Vec<String>,
    /// Regular expressions that answer with the rule outright.
    pub patterns: Vec<String>,
    pub priority: i32,
    pub enabled: bool,
    pub featured: bool,
    pub format: String,
    /// `question` and `answer` in other languages.
    #[sqlx(json)]
    pub translations: Translations,
    pub hit_count: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const COLUMNS: &str =
    "id, title, question, answer, examples, keywords, required, patterns, priority, enabled,
    featured, format, translations, hit_count, created_at, updated_at";

/// Filters for listing rules.
#[derive(Clone, Debug, Default)]
pub struct RuleFilter {
    /// Case-insensitive search in title, answer, examples and keywords.
    pub query: Option<String>,
    pub enabled: Option<bool>,
    pub limit: i64,
    pub offset: i64,
}

pub async fn list(
    db: impl PgExecutor<'_>,
    tenant: TenantId,
    f: &RuleFilter,
) -> Result<Vec<RuleRow>> {
    let pattern = f
        .query
        .as_deref()
        .filter(|q| !q.trim().is_empty())
        .map(|q| format!("%{}%", crate::escape_like(q.trim())));
    Ok(sqlx::query_as(&format!(
        "select {COLUMNS} from answer_rules
         where tenant_id = $1
           and ($2::bool is null or enabled = $2)
           and ($3::text is null or title ilike $3 or answer ilike $3
                or array_to_string(examples, ' ') ilike $3
                or array_to_string(keywords, ' ') ilike $3)
         order by created_at, id
         limit $4 offset $5"
    ))
    .bind(tenant)
    .bind(f.enabled)
    .bind(pattern)
    .bind(f.limit)
    .bind(f.offset)
    .fetch_all(db)
    .await?)
}

/// How often each rule answered (inbound messages matched to it), all time.
pub async fn hit_counts(
    db: impl PgExecutor<'_>,
    tenant: TenantId,
) -> Result<std::collections::HashMap<RuleId, i64>> {
    let rows: Vec<(RuleId, i64)> = sqlx::query_as(
        "select rule_id, count(*) from messages
         where tenant_id = $1 and direction = 'in' and rule_id is not null
         group by rule_id",
    )
    .bind(tenant)
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().collect())
}

/// Turns rules on or off in bulk; returns how many changed.
pub async fn set_enabled(
    db: impl PgExecutor<'_>,
    tenant: TenantId,
    ids: &[RuleId],
    enabled: bool,
) -> Result<u64> {
    let raw: Vec<uuid::Uuid> = ids.iter().map(|i| i.0).collect();
    Ok(sqlx::query("update answer_rules set enabled = $3 where tenant_id = $1 and id = any($2) and enabled <> $3")
        .bind(tenant)
        .bind(&raw)
        .bind(enabled)
        .execute(db)
        .await?
        .rows_affected())
}

/// Every rule of the tenant (for export).
pub async fn all(db: impl PgExecutor<'_>, tenant: TenantId) -> Result<Vec<RuleRow>> {
    Ok(sqlx::query_as(&format!(
        "select {COLUMNS} from answer_rules where tenant_id = $1 order by created_at, id"
    ))
    .bind(tenant)
    .fetch_all(db)
    .await?)
}

/// A rule by its exact title (import matches on it).
pub async fn find_by_title(
    db: impl PgExecutor<'_>,
    tenant: TenantId,
    title: &str,
) -> Result<Option<RuleRow>> {
    Ok(sqlx::query_as(&format!(
        "select {COLUMNS} from answer_rules where tenant_id = $1 and title = $2 order by created_at limit 1"
    ))
    .bind(tenant)
    .bind(title)
    .fetch_optional(db)
    .await?)
}

/// Whether a rule other than `except` has exactly this title (import matches rules by
/// title, so two with one title would be ambiguous).
pub async fn title_taken(
    db: impl PgExecutor<'_>,
    tenant: TenantId,
    title: &str,
    except: RuleId,
) -> Result<bool> {
    Ok(sqlx::query_scalar(
        "select exists (select 1 from answer_rules
                        where tenant_id = $1 and title = $2 and id <> $3)",
    )
    .bind(tenant)
    .bind(title)
    .bind(except)
    .fetch_one(db)
    .await?)
}

/// The enabled rules, for building the matcher and the bot configuration.
pub async fn list_enabled(db: impl PgExecutor<'_>, tenant: TenantId) -> Result<Vec<RuleRow>> {
    Ok(sqlx::query_as(&format!(
        "select {COLUMNS} from answer_rules where tenant_id = $1 and enabled order by created_at, id"
    ))
    .bind(tenant)
    .fetch_all(db)
    .await?)
}

pub async fn get(db: impl PgExecutor<'_>, tenant: TenantId, id: RuleId) -> Result<RuleRow> {
    sqlx::query_as(&format!(
        "select {COLUMNS} from answer_rules where tenant_id = $1 and id = $2"
    ))
    .bind(tenant)
    .bind(id)
    .fetch_optional(db)
    .await?
    .found()
}

/// The values of a rule as written by an admin.
#[derive(Clone, Debug, Default)]
pub struct RuleInput {
    pub title: String,
    /// The question as users see it; `None`: the first example.
    pub question: Option<String>,
    pub answer: String,
    pub examples: Vec<String>,
    pub keywords: Vec<String>,
    pub required: Vec<String>,
    pub patterns: Vec<String>,
    pub priority: i32,
    pub enabled: bool,
    pub featured: bool,
    /// `plain` or `html` (Telegram's HTML formatting).
    pub format: String,
    /// `question` and `answer` in other languages.
    pub translations: Translations,
}

pub async fn insert(
    db: impl PgExecutor<'_>,
    tenant: TenantId,
    id: RuleId,
    r: &RuleInput,
) -> Result<RuleRow> {
    Ok(sqlx::query_as(&format!(
        "insert into answer_rules (tenant_id, id, title, answer, examples, keywords, priority,
            enabled, featured, format, required, patterns, question, translations)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
         returning {COLUMNS}"
    ))
    .bind(tenant)
    .bind(id)
    .bind(&r.title)
    .bind(&r.answer)
    .bind(&r.examples)
    .bind(&r.keywords)
    .bind(r.priority)
    .bind(r.enabled)
    .bind(r.featured)
    .bind(&r.format)
    .bind(&r.required)
    .bind(&r.patterns)
    .bind(&r.question)
    .bind(sqlx::types::Json(&r.translations))
    .fetch_one(db)
    .await?)
}

pub async fn update(
    db: impl PgExecutor<'_>,
    tenant: TenantId,
    id: RuleId,
    r: &RuleInput,
) -> Result<RuleRow> {
    sqlx::query_as(&format!(
        "update answer_rules set title = $3, answer = $4, examples = $5, keywords = $6,
            priority = $7, enabled = $8, featured = $9, format = $10, required = $11,
            patterns = $12, question = $13, translations = $14
         where tenant_id = $1 and id = $2 returning {COLUMNS}"
    ))
    .bind(tenant)
    .bind(id)
    .bind(&r.title)
    .bind(&r.answer)
    .bind(&r.examples)
    .bind(&r.keywords)
    .bind(r.priority)
    .bind(r.enabled)
    .bind(r.featured)
    .bind(&r.format)
    .bind(&r.required)
    .bind(&r.patterns)
    .bind(&r.question)
    .bind(sqlx::types::Json(&r.translations))
    .fetch_optional(db)
    .await?
    .found()
}

pub async fn delete(db: impl PgExecutor<'_>, tenant: TenantId, id: RuleId) -> Result<()> {
    let done = sqlx::query("delete from answer_rules where tenant_id = $1 and id = $2")
        .bind(tenant)
        .bind(id)
        .execute(db)
        .await?;
    if done.rows_affected() == 0 {
        return Err(DbError::NotFound);
    }
    Ok(())
}

/// Which of `ids` exist as rules of the tenant (to validate button targets).
pub async fn existing_ids(
    db: impl PgExecutor<'_>,
    tenant: TenantId,
    ids: &[RuleId],
) -> Result<Vec<RuleId>> {
    let raw: Vec<uuid::Uuid> = ids.iter().map(|i| i.0).collect();
    Ok(
        sqlx::query_scalar("select id from answer_rules where tenant_id = $1 and id = any($2)")
            .bind(tenant)
            .bind(&raw)
            .fetch_all(db)
            .await?,
    )
}

/// A question the bot did not answer with a rule (handed over or only suggested).
#[derive(Clone, Debug, sqlx::FromRow, serde::Serialize)]
pub struct Unanswered {
    pub id: i64,
    pub text: String,
    pub created_at: DateTime<Utc>,
    /// The matcher's best guess, if it had one.
    pub best_rule: Option<uuid::Uuid>,
    pub best_score: Option<f32>,
    /// The rule that answered, when the bot answered but was unsure.
    pub answered_by: Option<uuid::Uuid>,
}

/// Users' text messages of the last `days` days that no rule answered, that a rule
/// answered with a confidence below `unsure_below` (perhaps wrongly: worth a look), or
/// whose answer the user said did not help, newest first (test traffic excluded).
pub async fn unanswered(
    db: impl PgExecutor<'_>,
    tenant: TenantId,
    days: i32,
    limit: i64,
    unsure_below: f32,
) -> Result<Vec<Unanswered>> {
    Ok(sqlx::query_as(
        "select m.id, m.text, m.created_at,
                (m.match -> 'candidates' -> 0 ->> 'rule_id')::uuid as best_rule,
                (m.match -> 'candidates' -> 0 ->> 'score')::real as best_score,
                m.rule_id as answered_by
         from messages m
         join conversations c on c.tenant_id = m.tenant_id and c.id = m.conversation_id
         where m.tenant_id = $1 and m.direction = 'in' and m.kind = 'text'
           and m.match is not null and not c.is_test
           and (m.rule_id is null
                or (m.match -> 'candidates' -> 0 ->> 'score')::real < $4
                or exists (select 1 from events e
                           where e.tenant_id = m.tenant_id and e.conversation_id = m.conversation_id
                             and e.kind = 'answer.feedback' and e.data ->> 'helped' = 'false'
                             and e.data ->> 'rule_id' = m.rule_id::text
                             and e.created_at >= m.created_at))
           and m.created_at > now() - make_interval(days => $2)
         order by m.id desc
         limit $3",
    )
    .bind(tenant)
    .bind(days)
    .bind(limit)
    .bind(unsure_below)
    .fetch_all(db)
    .await?)
}

/// Appends an example question to a rule (unless it is already there).
pub async fn add_example(
    db: impl PgExecutor<'_>,
    tenant: TenantId,
    id: RuleId,
    example: &str,
) -> Result<RuleRow> {
    sqlx::query_as(&format!(
        "update answer_rules set examples = case when $3 = any(examples) then examples
                                                 else array_append(examples, $3) end
         where tenant_id = $1 and id = $2 returning {COLUMNS}"
    ))
    .bind(tenant)
    .bind(id)
    .bind(example)
    .fetch_optional(db)
    .await?
    .found()
}

/// How many rules the tenant has and how many examples they hold in all, counted after
/// the tenant's other writers of rules are done: called inside the transaction that
/// changed them, just before its commit, it holds a per-tenant lock until then, so
/// parallel changes are counted one after another (each sees the ones committed before).
pub async fn totals_locked(db: &mut sqlx::PgConnection, tenant: TenantId) -> Result<(i64, i64)> {
    sqlx::query("select pg_advisory_xact_lock(hashtextextended('rules:' || $1::text, 0))")
        .bind(tenant)
        .execute(&mut *db)
        .await?;
    Ok(sqlx::query_as(
        "select count(*), coalesce(sum(cardinality(examples)), 0)::bigint
         from answer_rules where tenant_id = $1",
    )
    .bind(tenant)
    .fetch_one(&mut *db)
    .await?)
}

/// The rules that answered most among the latest 20,000 answered questions (bounded work
/// however large the history), most asked first.
pub async fn most_asked(
    db: impl PgExecutor<'_>,
    tenant: TenantId,
    limit: i64,
) -> Result<Vec<RuleId>> {
    Ok(sqlx::query_scalar(
        "select rule_id from (
            select rule_id from messages
            where tenant_id = $1 and direction = 'in' and rule_id is not null
            order by id desc limit 20000
         ) recent
         group by rule_id order by count(*) desc, rule_id limit $2",
    )
    .bind(tenant)
    .bind(limit)
    .fetch_all(db)
    .await?)
}
