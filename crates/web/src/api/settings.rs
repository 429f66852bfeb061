//! The bot's texts and behaviour settings.

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use switchboard_app::settings;
use switchboard_db::config::{Settings, SettingsPatch};
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
    /// Minimum confidence to suggest rules ("Did you mean…?"); below it, hand over.
    pub suggest_threshold: f32,
    /// Groups of words that mean the same for the matcher ("wifi, wi-fi, интернет").
    pub synonyms: Vec<String>,
    /// Ask "Helped? / Didn't help" under the bot's answers.
    pub feedback_enabled: bool,
    /// en or ru: the language of the default texts and command descriptions.
    pub default_language: String,
    /// Sent instead of the hand-over text outside working hours.
    pub offhours_text: String,
    /// IANA time zone of the working hours, e.g. Europe/Moscow.
    pub timezone: String,
    /// `{"days": [[["09:00","18:00"]], …]}` Monday first; null: always open.
    #[schema(value_type = Option<Object>)]
    pub working_hours: Option<serde_json::Value>,
    /// Texts for users of the other language: `{"ru": {"welcome_text": "…"}}`.
    #[schema(value_type = Object)]
    pub translations: serde_json::Value,
    /// After closing, ask the user to rate the help (1–5).
    pub rating_enabled: bool,
    pub rating_text: String,
    /// Messages and events are deleted after this many days; null: kept.
    pub retention_days: Option<i32>,
    /// Raw Telegram updates are deleted after this many days.
    pub raw_retention_days: i32,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

impl From<Settings> for SettingsOut {
    fn from(s: Settings) -> Self {
        let texts = s.texts();
        let offhours_text = texts.offhours_text;
        let rating_text = texts.rating_text;
        SettingsOut {
            welcome_text: s.welcome_text,
            help_text: s.help_text,
            handover_text: s.handover_text,
            closing_text: s.closing_text,
            already_waiting_text: s.already_waiting_text,
            stale_button_text: s.stale_button_text,
            answer_threshold: s.answer_threshold,
            suggest_threshold: s.suggest_threshold,
            synonyms: s.synonyms,
            feedback_enabled: s.feedback_enabled,
            offhours_text,
            default_language: s.default_language,
            timezone: s.timezone,
            working_hours: s.working_hours,
            translations: s.translations,
            rating_enabled: s.rating_enabled,
            rating_text,
            retention_days: s.retention_days,
            raw_retention_days: s.raw_retention_days,
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
    pub offhours_text: Option<String>,
    pub timezone: Option<String>,
    /// Null for "always open".
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<Object>)]
    pub working_hours: Option<Option<serde_json::Value>>,
    #[schema(value_type = Option<Object>)]
    pub translations: Option<serde_json::Value>,
    pub rating_enabled: Option<bool>,
    pub rating_text: Option<String>,
    pub suggest_threshold: Option<f32>,
    pub synonyms: Option<Vec<String>>,
    pub feedback_enabled: Option<bool>,
    /// Days (1–3650) to keep messages and events; null: for ever.
    #[serde(default, deserialize_with = "double_option_int")]
    pub retention_days: Option<Option<i32>>,
    /// Days (1–3650) to keep raw Telegram updates.
    pub raw_retention_days: Option<i32>,
}

fn double_option_int<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<i32>>, D::Error> {
    Ok(Some(Option::deserialize(d)?))
}

/// Tells an absent field (keep) from an explicit null (clear).
fn double_option<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<serde_json::Value>>, D::Error> {
    Ok(Some(Option::deserialize(d)?))
}

/// The bot's settings.
#[utoipa::path(get, path = "/api/v1/settings", tag = "settings", responses((status = 200, body = SettingsOut)))]
async fn get_settings(
    State(state): State<AppState>,
    p: ApiPrincipal,
) -> ApiResult<Json<SettingsOut>> {
    Ok(Json(settings::get(&state.app, &p.ctx()).await?.into()))
}

/// Changes any of the settings; fields left out keep their value.
#[utoipa::path(patch, path = "/api/v1/settings", tag = "settings", request_body = SettingsPatchIn,
    responses((status = 200, body = SettingsOut), (status = 422, body = ErrorBody)))]
async fn patch_settings(
    State(state): State<AppState>,
    p: ApiPrincipal,
    ApiJson(body): ApiJson<SettingsPatchIn>,
) -> ApiResult<Json<SettingsOut>> {
    let patch = SettingsPatch {
        welcome_text: body.welcome_text.clone(),
        help_text: body.help_text.clone(),
        handover_text: body.handover_text.clone(),
        closing_text: body.closing_text.clone(),
        already_waiting_text: body.already_waiting_text.clone(),
        stale_button_text: body.stale_button_text.clone(),
        answer_threshold: body.answer_threshold,
        default_language: body.default_language.clone(),
        offhours_text: body.offhours_text.clone(),
        timezone: body.timezone.clone(),
        working_hours: body.working_hours.clone(),
        translations: body.translations.clone(),
        rating_enabled: body.rating_enabled,
        rating_text: body.rating_text.clone(),
        suggest_threshold: body.suggest_threshold,
        synonyms: body.synonyms.clone(),
        feedback_enabled: body.feedback_enabled,
        retention_days: body.retention_days,
        raw_retention_days: body.raw_retention_days,
    };
    let saved = settings::update(&state.app, &p.ctx(), patch).await?;
    Ok(Json(saved.into()))
}
