//! The bot's texts and behaviour settings.

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::json;
use switchboard_core::validate::{self, Invalid};
use switchboard_core::Permission;
use switchboard_db::config::{self, Settings, SettingsPatch};
use switchboard_db::events::{self, NewEvent};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::ApiJson;
use crate::auth::ApiPrincipal;
use crate::error::{ApiResult, ErrorBody};
use crate::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_settings, patch_settings))
}

#[derive(Serialize, ToSchema)]
pub struct SettingsOut {
    /// Sent on /start, with the main menu.
    pub welcome_text: String,
    /// Sent on /help.
    pub help_text: String,
    /// Sent when the conversation is handed to operators.
    pub handover_text: String,
    /// Sent when an operator closes the conversation.
    pub closing_text: String,
    /// Shown when a hand-over button is pressed while already waiting.
    pub already_waiting_text: String,
    /// Shown when a button that no longer exists is pressed.
    pub stale_button_text: String,
    /// Minimum matcher confidence (0–1) to answer with a rule.
    pub answer_threshold: f32,
    /// en or ru: the language of the default texts and command descriptions.
    pub default_language: String,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

impl From<Settings> for SettingsOut {
    fn from(s: Settings) -> Self {
        SettingsOut {
            welcome_text: s.welcome_text,
            help_text: s.help_text,
            handover_text: s.handover_text,
            closing_text: s.closing_text,
            already_waiting_text: s.already_waiting_text,
            stale_button_text: s.stale_button_text,
            answer_threshold: s.answer_threshold,
            default_language: s.default_language,
            updated_at: s.updated_at,
        }
    }
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct SettingsPatchIn {
    pub welcome_text: Option<String>,
    pub help_text: Option<String>,
    pub handover_text: Option<String>,
    pub closing_text: Option<String>,
    pub already_waiting_text: Option<String>,
    pub stale_button_text: Option<String>,
    pub answer_threshold: Option<f32>,
    pub default_language: Option<String>,
}

/// The bot's settings.
#[utoipa::path(get, path = "/api/v1/settings", tag = "settings", responses((status = 200, body = SettingsOut)))]
async fn get_settings(
    State(state): State<AppState>,
    p: ApiPrincipal,
) -> ApiResult<Json<SettingsOut>> {
    p.require(Permission::ReadConfig)?;
    Ok(Json(
        config::get_settings(&state.pool, p.tenant).await?.into(),
    ))
}

/// Changes any of the settings; fields left out keep their value.
#[utoipa::path(patch, path = "/api/v1/settings", tag = "settings", request_body = SettingsPatchIn,
    responses((status = 200, body = SettingsOut), (status = 422, body = ErrorBody)))]
async fn patch_settings(
    State(state): State<AppState>,
    p: ApiPrincipal,
    ApiJson(body): ApiJson<SettingsPatchIn>,
) -> ApiResult<Json<SettingsOut>> {
    p.require(Permission::WriteConfig)?;
    let mut errors = Invalid::new();
    let texts = [
        ("welcome_text", &body.welcome_text),
        ("help_text", &body.help_text),
        ("handover_text", &body.handover_text),
        ("closing_text", &body.closing_text),
        ("already_waiting_text", &body.already_waiting_text),
        ("stale_button_text", &body.stale_button_text),
    ];
    for (field, value) in texts {
        if let Some(v) = value {
            let limit = if field.ends_with("_button_text") || field == "already_waiting_text" {
                200
            } else {
                4096
            };
            errors.check(
                field,
                validate::text(v, limit).and_then(|_| validate::message_text(v)),
            );
        }
    }
    if let Some(t) = body.answer_threshold {
        if !(0.0..=1.0).contains(&t) || t.is_nan() {
            errors.add("answer_threshold", "must be between 0 and 1");
        }
    }
    if let Some(l) = &body.default_language {
        if l != "en" && l != "ru" {
            errors.add("default_language", "must be en or ru");
        }
    }
    errors.into_result()?;
    let changed: Vec<&str> = texts
        .iter()
        .filter(|(_, v)| v.is_some())
        .map(|(f, _)| *f)
        .chain(body.answer_threshold.map(|_| "answer_threshold"))
        .chain(body.default_language.as_ref().map(|_| "default_language"))
        .collect();
    let patch = SettingsPatch {
        welcome_text: body.welcome_text.clone(),
        help_text: body.help_text.clone(),
        handover_text: body.handover_text.clone(),
        closing_text: body.closing_text.clone(),
        already_waiting_text: body.already_waiting_text.clone(),
        stale_button_text: body.stale_button_text.clone(),
        answer_threshold: body.answer_threshold,
        default_language: body.default_language.clone(),
    };
    let mut tx = state.pool.begin().await?;
    let saved = config::update_settings(&mut *tx, p.tenant, &patch).await?;
    events::insert(
        &mut tx,
        p.tenant,
        NewEvent::new("settings.updated", p.actor()).data(json!({"fields": changed})),
    )
    .await?;
    tx.commit().await?;
    if body.default_language.is_some() {
        republish_commands(&state, p.tenant);
    }
    Ok(Json(saved.into()))
}

/// Publishes the bot's command list to Telegram in the background (best effort).
pub(crate) fn republish_commands(state: &AppState, tenant: switchboard_core::TenantId) {
    let telegram = state.telegram.clone();
    tokio::spawn(async move {
        if let Err(e) = telegram.publish_commands(tenant).await {
            tracing::warn!(%tenant, error = %e, "could not publish commands to Telegram");
        }
    });
}
