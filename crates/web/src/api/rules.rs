//! Answer rules: what the bot answers and to which questions.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use serde::{Deserialize, Serialize};
use switchboard_app::rules::{self, Rule, RuleChange, RuleDraft};
use switchboard_core::{RuleId, Translations};
use switchboard_db::config::rows_of;
use switchboard_db::rules::{RuleFilter, RuleRow};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::buttons::{rows_in, rows_out, ButtonIn, ButtonOut};
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
    /// `question` and `answer` (`{"ru": {"answer": "…"}}`) in other languages than the organization's default, by language
    /// code (`en`, `ru`): a Telegram user of that language gets these words.
    #[schema(value_type = std::collections::BTreeMap<String, std::collections::BTreeMap<String, String>>)]
    pub translations: Translations,
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
    /// `question` and `answer` (`{"ru": {"answer": "…"}}`) in other languages than the organization's default, by language
    /// code (`en`, `ru`): a Telegram user of that language gets these words.
    #[serde(default)]
    #[schema(value_type = std::collections::BTreeMap<String, std::collections::BTreeMap<String, String>>)]
    pub translations: Translations,
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
    /// Replaces all translations when given.
    #[schema(value_type = Option<std::collections::BTreeMap<String, std::collections::BTreeMap<String, String>>>)]
    pub translations: Option<Translations>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RuleQuery {
    /// Search in titles, answers, examples and keywords.
    pub q: Option<String>,
    pub enabled: Option<bool>,
    /// Page size (default 50, at most 200).
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

impl From<Rule> for RuleOut {
    fn from(r: Rule) -> Self {
        let rows = rows_of(&r.buttons.iter().collect::<Vec<_>>());
        RuleOut::of(r.rule, rows_out(&rows))
    }
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
            translations: r.translations,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// A field that is present (`Some`, possibly `Some(None)` for `null`) or absent (`None`).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

/// Rules, oldest first, with search and filters.
#[utoipa::path(get, path = "/api/v1/rules", tag = "rules", params(RuleQuery),
    responses((status = 200, body = Items<RuleOut>)))]
async fn list_rules(
    State(state): State<AppState>,
    p: ApiPrincipal,
    ApiQuery(q): ApiQuery<RuleQuery>,
) -> ApiResult<Json<Items<RuleOut>>> {
    let filter = RuleFilter {
        query: q.q,
        enabled: q.enabled,
        limit: page_limit(q.limit),
        offset: q.offset.unwrap_or(0).max(0),
    };
    let (rows, buttons) = rules::list(&state.app, &p.ctx(), &filter).await?;
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
    let draft = RuleDraft {
        title: body.title,
        question: body.question,
        answer: body.answer,
        examples: body.examples,
        keywords: body.keywords,
        required: body.required,
        patterns: body.patterns,
        priority: body.priority.unwrap_or(0),
        enabled: body.enabled.unwrap_or(true),
        featured: body.featured.unwrap_or(false),
        format: body.format.unwrap_or_else(|| "plain".into()),
        buttons: body.buttons.map(rows_in),
        translations: body.translations,
    };
    let rule = rules::create(&state.app, &p.ctx(), draft).await?;
    Ok((StatusCode::CREATED, Json(RuleOut::from(rule))))
}

/// One rule.
#[utoipa::path(get, path = "/api/v1/rules/{id}", tag = "rules", params(("id" = Uuid, Path)),
    responses((status = 200, body = RuleOut), (status = 404, body = ErrorBody)))]
async fn get_rule(
    State(state): State<AppState>,
    p: ApiPrincipal,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<RuleOut>> {
    Ok(Json(
        rules::get(&state.app, &p.ctx(), RuleId(id)).await?.into(),
    ))
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
    let change = RuleChange {
        title: body.title,
        question: body.question,
        answer: body.answer,
        examples: body.examples,
        keywords: body.keywords,
        required: body.required,
        patterns: body.patterns,
        priority: body.priority,
        enabled: body.enabled,
        featured: body.featured,
        format: body.format,
        buttons: body.buttons.map(rows_in),
        translations: body.translations,
    };
    let rule = rules::update(&state.app, &p.ctx(), RuleId(id), change).await?;
    Ok(Json(rule.into()))
}

/// Deletes a rule (and buttons that showed it).
#[utoipa::path(delete, path = "/api/v1/rules/{id}", tag = "rules", params(("id" = Uuid, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
async fn delete_rule(
    State(state): State<AppState>,
    p: ApiPrincipal,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<impl IntoResponse> {
    rules::delete(&state.app, &p.ctx(), RuleId(id)).await?;
    Ok(StatusCode::NO_CONTENT)
}
