//! The bot's texts and behaviour settings.

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::json;
use switchboard_core::validate::{self, Invalid, Problem};
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

/// Checks the texts, hours and zone of a settings change (shared with the panel).
pub fn validate_patch(p: &SettingsPatch, errors: &mut Invalid) {
    let texts = [
        ("welcome_text", &p.welcome_text, 4096),
        ("help_text", &p.help_text, 4096),
        ("handover_text", &p.handover_text, 4096),
        ("closing_text", &p.closing_text, 4096),
        ("offhours_text", &p.offhours_text, 4096),
        ("rating_text", &p.rating_text, 4096),
        ("already_waiting_text", &p.already_waiting_text, 200),
        ("stale_button_text", &p.stale_button_text, 200),
    ];
    for (field, value, limit) in texts {
        if let Some(v) = value {
            errors.check(
                field,
                validate::text(v, limit).and_then(|_| validate::message_text(v)),
            );
        }
    }
    for (field, value) in [
        ("answer_threshold", p.answer_threshold),
        ("suggest_threshold", p.suggest_threshold),
    ] {
        if let Some(t) = value {
            if !(0.0..=1.0).contains(&t) || t.is_nan() {
                errors.add(
                    field,
                    Problem::coded("between", "must be between 0 and 1")
                        .with("min", 0)
                        .with("max", 1),
                );
            }
        }
    }
    if let Some(groups) = &p.synonyms {
        errors.check("synonyms", validate::text_list(groups, 200, 500));
        if groups
            .iter()
            .any(|g| g.split(',').filter(|w| !w.trim().is_empty()).count() < 2)
        {
            errors.add(
                "synonyms",
                Problem::coded(
                    "synonym_group",
                    "each group needs at least two words, separated by commas",
                ),
            );
        }
    }
    if let Some(Some(d)) = p.retention_days {
        if !(1..=3650).contains(&d) {
            errors.add(
                "retention_days",
                Problem::coded(
                    "retention_days",
                    "must be from 1 to 3650 days, or empty to keep",
                ),
            );
        }
    }
    if let Some(d) = p.raw_retention_days {
        if !(1..=3650).contains(&d) {
            errors.add(
                "raw_retention_days",
                Problem::coded("days_range", "must be from 1 to 3650 days")
                    .with("min", 1)
                    .with("max", 3650),
            );
        }
    }
    if let Some(l) = &p.default_language {
        if l != "en" && l != "ru" {
            errors.add(
                "default_language",
                Problem::coded("language", "must be en or ru"),
            );
        }
    }
    if let Some(z) = &p.timezone {
        if let Err(e) = switchboard_core::hours::parse_zone(z) {
            errors.add(
                "timezone",
                Problem::coded("timezone", e.to_string()).with("zone", z),
            );
        }
    }
    if let Some(Some(h)) = &p.working_hours {
        match serde_json::from_value::<switchboard_core::hours::WorkingHours>(h.clone()) {
            Ok(hours) => {
                if let Err(e) = hours.validate() {
                    errors.add(
                        "working_hours",
                        Problem::coded("working_hours", e.to_string())
                            .with("reason", e.to_string()),
                    );
                }
            }
            Err(_) => errors.add(
                "working_hours",
                Problem::coded(
                    "working_hours_shape",
                    "must be {\"days\": [7 lists of [\"HH:MM\", \"HH:MM\"] pairs]}",
                ),
            ),
        }
    }
    if let Some(t) = &p.translations {
        let ok = t.as_object().is_some_and(|langs| {
            langs.iter().all(|(lang, texts)| {
                (lang == "en" || lang == "ru")
                    && texts.as_object().is_some_and(|m| {
                        m.values()
                            .all(|v| v.as_str().is_some_and(|s| s.chars().count() <= 4096))
                    })
            })
        });
        if !ok {
            errors.add(
                "translations",
                Problem::coded(
                    "translations_shape",
                    "must be {\"en\"|\"ru\": {text name: text}}",
                ),
            );
        }
    }
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
        synonyms: body.synonyms.as_deref().map(crate::api::rules::clean_list),
        feedback_enabled: body.feedback_enabled,
        retention_days: body.retention_days,
        raw_retention_days: body.raw_retention_days,
    };
    let mut errors = Invalid::new();
    validate_patch(&patch, &mut errors);
    errors.into_result()?;
    let changed = changed_fields(&patch);
    let mut tx = state.pool.begin().await?;
    let saved = config::update_settings(&mut *tx, p.tenant, &patch).await?;
    events::insert(
        &mut tx,
        p.tenant,
        NewEvent::new("settings.updated", p.actor()).data(json!({"fields": changed})),
    )
    .await?;
    tx.commit().await?;
    state.telegram.config_changed(p.tenant);
    if body.default_language.is_some() {
        republish_commands(&state, p.tenant);
    }
    Ok(Json(saved.into()))
}

/// The names of the fields a change sets (for the events log).
pub fn changed_fields(p: &SettingsPatch) -> Vec<&'static str> {
    let mut out = Vec::new();
    let fields: [(&'static str, bool); 19] = [
        ("welcome_text", p.welcome_text.is_some()),
        ("help_text", p.help_text.is_some()),
        ("handover_text", p.handover_text.is_some()),
        ("closing_text", p.closing_text.is_some()),
        ("already_waiting_text", p.already_waiting_text.is_some()),
        ("stale_button_text", p.stale_button_text.is_some()),
        ("answer_threshold", p.answer_threshold.is_some()),
        ("default_language", p.default_language.is_some()),
        ("offhours_text", p.offhours_text.is_some()),
        ("timezone", p.timezone.is_some()),
        ("working_hours", p.working_hours.is_some()),
        ("translations", p.translations.is_some()),
        ("rating_enabled", p.rating_enabled.is_some()),
        ("rating_text", p.rating_text.is_some()),
        ("suggest_threshold", p.suggest_threshold.is_some()),
        ("synonyms", p.synonyms.is_some()),
        ("feedback_enabled", p.feedback_enabled.is_some()),
        ("retention_days", p.retention_days.is_some()),
        ("raw_retention_days", p.raw_retention_days.is_some()),
    ];
    for (name, set) in fields {
        if set {
            out.push(name);
        }
    }
    out
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
