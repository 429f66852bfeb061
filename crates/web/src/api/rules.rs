//! Answer rules: what the bot answers and to which questions.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::json;
use switchboard_core::validate::{self, Invalid, Problem};
use switchboard_core::{Permission, RuleId, TenantId};
use switchboard_db::config::{self, rows_of, ButtonOwner};
use switchboard_db::events::{self, NewEvent};
use switchboard_db::rules::{self, RuleFilter, RuleInput, RuleRow};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::buttons::{rows_out, validate_rows, ButtonIn, ButtonOut};
use super::{page_limit, ApiJson, ApiPath, ApiQuery, Items};
use crate::auth::ApiPrincipal;
use crate::error::{ApiResult, ErrorBody};
use crate::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_rules, create_rule))
        .routes(routes!(get_rule, update_rule, delete_rule))
}

#[derive(Serialize, ToSchema)]
pub struct RuleOut {
    pub id: Uuid,
    /// For the admins (the panel, the log); users never see it.
    pub title: String,
    /// The question as users see it on "Did you mean…?" and typical-question buttons;
    /// `null`: the first example.
    pub question: Option<String>,
    /// The text the bot sends.
    pub answer: String,
    /// Example questions this rule answers.
    pub examples: Vec<String>,
    /// Words or phrases that, found in a message, point to this rule.
    pub keywords: Vec<String>,
    /// Words that must all be in a message for this rule to answer it.
    pub required: Vec<String>,
    /// Regular expressions (case-insensitive): a message matching one is answered with
    /// this rule outright.
    pub patterns: Vec<String>,
    /// A typical question: offered for vague messages and under /help.
    pub featured: bool,
    pub enabled: bool,
    /// Wins ties between equally good rules (higher first).
    pub priority: i32,
    /// `plain` or `html`.
    pub format: String,
    /// Buttons sent with the answer, row by row.
    pub buttons: Vec<Vec<ButtonOut>>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleIn {
    pub title: String,
    /// The question as users see it (1–64 characters); without it, the first example.
    pub question: Option<String>,
    pub answer: String,
    #[serde(default)]
    pub examples: Vec<String>,
    #[serde(default)]
    pub keywords: Vec<String>,
    #[serde(default)]
    pub required: Vec<String>,
    #[serde(default)]
    pub patterns: Vec<String>,
    pub featured: Option<bool>,
    pub enabled: Option<bool>,
    pub priority: Option<i32>,
    /// `plain` (default) or `html` (Telegram's HTML formatting).
    pub format: Option<String>,
    pub buttons: Option<Vec<Vec<ButtonIn>>>,
}

/// A partial change: fields left out keep their value.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RulePatch {
    pub title: Option<String>,
    /// `null` clears it (the first example is offered again).
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, nullable)]
    pub question: Option<Option<String>>,
    pub answer: Option<String>,
    pub examples: Option<Vec<String>>,
    pub keywords: Option<Vec<String>>,
    pub required: Option<Vec<String>>,
    pub patterns: Option<Vec<String>>,
    pub featured: Option<bool>,
    pub enabled: Option<bool>,
    pub priority: Option<i32>,
    pub format: Option<String>,
    pub buttons: Option<Vec<Vec<ButtonIn>>>,
}

#[derive(Deserialize, IntoParams)]
pub struct RuleQuery {
    /// Search in titles, answers, examples and keywords.
    pub q: Option<String>,
    pub enabled: Option<bool>,
    /// Page size (default 50, at most 200).
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

async fn rule_out(state: &AppState, tenant: TenantId, r: RuleRow) -> ApiResult<RuleOut> {
    let buttons = config::rule_buttons(&state.pool, tenant, r.id).await?;
    let rows = rows_of(&buttons.iter().collect::<Vec<_>>());
    Ok(RuleOut::of(r, rows_out(&rows)))
}

impl RuleOut {
    fn of(r: RuleRow, buttons: Vec<Vec<ButtonOut>>) -> Self {
        RuleOut {
            id: r.id.0,
            title: r.title,
            question: r.question,
            answer: r.answer,
            examples: r.examples,
            keywords: r.keywords,
            required: r.required,
            patterns: r.patterns,
            featured: r.featured,
            enabled: r.enabled,
            priority: r.priority,
            format: r.format,
            buttons,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// Trims, drops empty and repeated items.
pub fn clean_list(items: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for i in items {
        let t = i.trim().to_string();
        if !t.is_empty() && !out.contains(&t) {
            out.push(t);
        }
    }
    out
}

/// A question as given: trimmed, `None` when empty.
pub fn clean_question(q: Option<&str>) -> Option<String> {
    q.map(str::trim).filter(|q| !q.is_empty()).map(String::from)
}

/// A field that is present (`Some`, possibly `Some(None)` for `null`) or absent (`None`).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

/// Checks a rule as written by an admin (shared by the API and the panel).
pub fn validate_rule(r: &RuleInput, errors: &mut Invalid) {
    errors.check("title", validate::text(&r.title, 200));
    if let Some(q) = &r.question {
        errors.check("question", validate::text(q, 64));
    }
    errors.check("answer", validate::text(&r.answer, 20_000));
    errors.check("examples", validate::text_list(&r.examples, 1000, 500));
    errors.check("keywords", validate::text_list(&r.keywords, 200, 100));
    errors.check("required", validate::text_list(&r.required, 20, 100));
    errors.check("patterns", validate::text_list(&r.patterns, 20, 300));
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
    match r.format.as_str() {
        "plain" => {}
        "html" => {
            if let Err(e) = switchboard_core::format::check_telegram_html(&r.answer) {
                errors.add("answer", e.problem());
            }
        }
        _ => errors.add(
            "format",
            Problem::coded("format_mode", "must be plain or html"),
        ),
    }
}

/// Rules, oldest first, with search and filters.
#[utoipa::path(get, path = "/api/v1/rules", tag = "rules", params(RuleQuery),
    responses((status = 200, body = Items<RuleOut>)))]
async fn list_rules(
    State(state): State<AppState>,
    p: ApiPrincipal,
    ApiQuery(q): ApiQuery<RuleQuery>,
) -> ApiResult<Json<Items<RuleOut>>> {
    p.require(Permission::ReadConfig)?;
    let filter = RuleFilter {
        query: q.q,
        enabled: q.enabled,
        limit: page_limit(q.limit),
        offset: q.offset.unwrap_or(0).max(0),
    };
    let rows = rules::list(&state.pool, p.tenant, &filter).await?;
    let buttons = config::list_buttons(&state.pool, p.tenant).await?;
    let items = rows
        .into_iter()
        .map(|r| {
            let mine: Vec<_> = buttons
                .iter()
                .filter(|b| b.owner_rule_id == Some(r.id))
                .collect();
            RuleOut::of(r, rows_out(&rows_of(&mine)))
        })
        .collect();
    Ok(Json(Items { items }))
}

/// Creates a rule.
#[utoipa::path(post, path = "/api/v1/rules", tag = "rules", request_body = RuleIn,
    responses((status = 201, body = RuleOut), (status = 422, body = ErrorBody)))]
async fn create_rule(
    State(state): State<AppState>,
    p: ApiPrincipal,
    ApiJson(body): ApiJson<RuleIn>,
) -> ApiResult<impl IntoResponse> {
    p.require(Permission::WriteConfig)?;
    let input = RuleInput {
        title: body.title.trim().to_string(),
        question: clean_question(body.question.as_deref()),
        answer: body.answer.trim().to_string(),
        examples: clean_list(&body.examples),
        keywords: clean_list(&body.keywords),
        required: clean_list(&body.required),
        patterns: clean_list(&body.patterns),
        priority: body.priority.unwrap_or(0),
        enabled: body.enabled.unwrap_or(true),
        featured: body.featured.unwrap_or(false),
        format: body.format.clone().unwrap_or_else(|| "plain".into()),
    };
    let mut errors = Invalid::new();
    validate_rule(&input, &mut errors);
    let buttons = match &body.buttons {
        Some(rows) => {
            Some(validate_rows(&state.pool, p.tenant, rows, "buttons", &mut errors).await?)
        }
        None => None,
    };
    errors.into_result()?;
    let id = RuleId::new();
    let mut tx = state.pool.begin().await?;
    let row = rules::insert(&mut *tx, p.tenant, id, &input).await?;
    if let Some(rows) = &buttons {
        config::replace_buttons(&mut tx, p.tenant, ButtonOwner::Rule(id), rows).await?;
    }
    events::insert(
        &mut tx,
        p.tenant,
        NewEvent::new("rule.created", p.actor()).data(json!({"rule_id": id, "title": input.title})),
    )
    .await?;
    tx.commit().await?;
    state.telegram.config_changed(p.tenant);
    Ok((
        StatusCode::CREATED,
        Json(rule_out(&state, p.tenant, row).await?),
    ))
}

/// One rule.
#[utoipa::path(get, path = "/api/v1/rules/{id}", tag = "rules", params(("id" = Uuid, Path)),
    responses((status = 200, body = RuleOut), (status = 404, body = ErrorBody)))]
async fn get_rule(
    State(state): State<AppState>,
    p: ApiPrincipal,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<RuleOut>> {
    p.require(Permission::ReadConfig)?;
    let row = rules::get(&state.pool, p.tenant, RuleId(id)).await?;
    Ok(Json(rule_out(&state, p.tenant, row).await?))
}

/// Changes a rule (only the fields given).
#[utoipa::path(patch, path = "/api/v1/rules/{id}", tag = "rules", params(("id" = Uuid, Path)),
    request_body = RulePatch,
    responses((status = 200, body = RuleOut), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn update_rule(
    State(state): State<AppState>,
    p: ApiPrincipal,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<RulePatch>,
) -> ApiResult<Json<RuleOut>> {
    p.require(Permission::WriteConfig)?;
    let id = RuleId(id);
    let current = rules::get(&state.pool, p.tenant, id).await?;
    let input = RuleInput {
        title: body
            .title
            .as_deref()
            .map_or(current.title.clone(), |t| t.trim().to_string()),
        question: match &body.question {
            Some(q) => clean_question(q.as_deref()),
            None => current.question.clone(),
        },
        answer: body
            .answer
            .as_deref()
            .map_or(current.answer.clone(), |t| t.trim().to_string()),
        examples: body
            .examples
            .as_deref()
            .map_or(current.examples.clone(), clean_list),
        keywords: body
            .keywords
            .as_deref()
            .map_or(current.keywords.clone(), clean_list),
        required: body
            .required
            .as_deref()
            .map_or(current.required.clone(), clean_list),
        patterns: body
            .patterns
            .as_deref()
            .map_or(current.patterns.clone(), clean_list),
        priority: body.priority.unwrap_or(current.priority),
        enabled: body.enabled.unwrap_or(current.enabled),
        featured: body.featured.unwrap_or(current.featured),
        format: body.format.clone().unwrap_or(current.format.clone()),
    };
    let mut errors = Invalid::new();
    validate_rule(&input, &mut errors);
    let buttons = match &body.buttons {
        Some(rows) => {
            Some(validate_rows(&state.pool, p.tenant, rows, "buttons", &mut errors).await?)
        }
        None => None,
    };
    errors.into_result()?;
    let mut tx = state.pool.begin().await?;
    let row = rules::update(&mut *tx, p.tenant, id, &input).await?;
    if let Some(rows) = &buttons {
        config::replace_buttons(&mut tx, p.tenant, ButtonOwner::Rule(id), rows).await?;
    }
    events::insert(
        &mut tx,
        p.tenant,
        NewEvent::new("rule.updated", p.actor()).data(json!({"rule_id": id, "title": input.title})),
    )
    .await?;
    tx.commit().await?;
    state.telegram.config_changed(p.tenant);
    Ok(Json(rule_out(&state, p.tenant, row).await?))
}

/// Deletes a rule (and buttons that showed it).
#[utoipa::path(delete, path = "/api/v1/rules/{id}", tag = "rules", params(("id" = Uuid, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
async fn delete_rule(
    State(state): State<AppState>,
    p: ApiPrincipal,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<impl IntoResponse> {
    p.require(Permission::WriteConfig)?;
    let mut tx = state.pool.begin().await?;
    rules::delete(&mut *tx, p.tenant, RuleId(id)).await?;
    events::insert(
        &mut tx,
        p.tenant,
        NewEvent::new("rule.deleted", p.actor()).data(json!({"rule_id": id})),
    )
    .await?;
    tx.commit().await?;
    state.telegram.config_changed(p.tenant);
    Ok(StatusCode::NO_CONTENT)
}
