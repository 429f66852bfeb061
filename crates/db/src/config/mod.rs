//! A tenant's bot configuration: settings and texts, menus with their buttons, commands.

mod commands;
mod menus;

pub use commands::*;
pub use menus::*;

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgExecutor};
use switchboard_core::bot::{BotTexts, Button, ButtonAction};
use switchboard_core::{ButtonId, CommandId, MenuId, RuleId, TenantId, Translations};

use crate::error::OptionExt;
use crate::{DbError, Result};

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Settings {
    pub tenant_id: TenantId,
    pub default_language: String,
    pub welcome_text: String,
    pub help_text: String,
    pub handover_text: String,
    pub closing_text: String,
    pub already_waiting_text: String,
    pub stale_button_text: String,
    pub answer_threshold: f32,
    pub suggest_threshold: f32,
    pub timezone: String,
    pub offhours_text: Option<String>,
    /// `{"ru": {"welcome_text": …}}`: texts for users of other languages.
    pub translations: serde_json::Value,
    /// [`switchboard_core::hours::WorkingHours`] as JSON, or null for always open.
    pub working_hours: Option<serde_json::Value>,
    /// Ask users to rate the help after a conversation is closed.
    pub rating_enabled: bool,
    pub rating_text: Option<String>,
    /// Groups of words that mean the same, one group per entry, comma-separated.
    pub synonyms: Vec<String>,
    /// Ask "Helped? / Didn't help" under answers.
    pub feedback_enabled: bool,
    /// Messages and events are deleted after this many days (None: kept).
    pub retention_days: Option<i32>,
    /// Raw Telegram updates are deleted after this many days.
    pub raw_retention_days: i32,
    pub updated_at: DateTime<Utc>,
}

impl Settings {
    pub fn lang(&self) -> switchboard_core::text::Lang {
        switchboard_core::text::Lang::from_code(&self.default_language)
            .unwrap_or(switchboard_core::text::Lang::En)
    }

    /// The texts in the default language: the columns, then any other texts the admins
    /// changed (kept under the default language in `translations`), over the defaults.
    pub fn texts(&self) -> BotTexts {
        let own = self
            .translations
            .get(self.lang().code())
            .cloned()
            .unwrap_or(serde_json::Value::Null);
        self.column_texts().overridden(&own)
    }

    fn column_texts(&self) -> BotTexts {
        let defaults = BotTexts::defaults(self.lang());
        BotTexts {
            welcome_text: self.welcome_text.clone(),
            help_text: self.help_text.clone(),
            handover_text: self.handover_text.clone(),
            closing_text: self.closing_text.clone(),
            already_waiting_text: self.already_waiting_text.clone(),
            stale_button_text: self.stale_button_text.clone(),
            offhours_text: self.offhours_text.clone().unwrap_or(defaults.offhours_text),
            rating_text: self.rating_text.clone().unwrap_or(defaults.rating_text),
            rating_thanks: defaults.rating_thanks,
            suggest_text: defaults.suggest_text,
            suggest_none: defaults.suggest_none,
            feedback_yes: defaults.feedback_yes,
            feedback_no: defaults.feedback_no,
            feedback_thanks: defaults.feedback_thanks,
            feedback_sorry: defaults.feedback_sorry,
            feedback_person: defaults.feedback_person,
        }
    }

    /// The texts for users of `lang`: each text falls back from the translation into
    /// `lang`, to the organization's own text in its default language, to the built-in
    /// text of `lang`.
    pub fn texts_in(&self, lang: switchboard_core::text::Lang) -> BotTexts {
        if lang == self.lang() {
            return self.texts();
        }
        let overrides = self
            .translations
            .get(lang.code())
            .cloned()
            .unwrap_or(serde_json::Value::Null);
        BotTexts::for_other_language(&self.texts(), self.lang(), lang).overridden(&overrides)
    }

    pub fn hours(&self) -> switchboard_core::hours::WorkingHours {
        self.working_hours
            .clone()
            .and_then(|v| serde_json::from_value(v).ok())
            .unwrap_or_default()
    }
}

const SETTINGS_COLUMNS: &str = "tenant_id, default_language, welcome_text, help_text,
    handover_text, closing_text, already_waiting_text, stale_button_text, answer_threshold,
    suggest_threshold, timezone, offhours_text, translations, working_hours, rating_enabled,
    rating_text, synonyms, feedback_enabled, retention_days, raw_retention_days, updated_at";

/// Creates a tenant's settings with the default texts of its language.
pub async fn insert_default_settings(
    db: impl PgExecutor<'_>,
    tenant: TenantId,
    lang: switchboard_core::text::Lang,
) -> Result<Settings> {
    let t = BotTexts::defaults(lang);
    Ok(sqlx::query_as(&format!(
        "insert into bot_settings (tenant_id, default_language, welcome_text, help_text,
            handover_text, closing_text, already_waiting_text, stale_button_text, offhours_text)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9) returning {SETTINGS_COLUMNS}"
    ))
    .bind(tenant)
    .bind(lang.code())
    .bind(&t.welcome_text)
    .bind(&t.help_text)
    .bind(&t.handover_text)
    .bind(&t.closing_text)
    .bind(&t.already_waiting_text)
    .bind(&t.stale_button_text)
    .bind(&t.offhours_text)
    .fetch_one(db)
    .await?)
}

/// Sets the tenant's time zone (an IANA name the caller has checked).
pub async fn set_timezone(db: impl PgExecutor<'_>, tenant: TenantId, zone: &str) -> Result<()> {
    sqlx::query("update bot_settings set timezone = $2 where tenant_id = $1")
        .bind(tenant)
        .bind(zone)
        .execute(db)
        .await?;
    Ok(())
}

/// The tenant's time zone (IANA name): the days of its statistics and log filters.
pub async fn timezone(db: impl PgExecutor<'_>, tenant: TenantId) -> Result<String> {
    Ok(
        sqlx::query_scalar::<_, String>("select timezone from bot_settings where tenant_id = $1")
            .bind(tenant)
            .fetch_optional(db)
            .await?
            .unwrap_or_else(|| "UTC".into()),
    )
}

pub async fn get_settings(db: impl PgExecutor<'_>, tenant: TenantId) -> Result<Settings> {
    sqlx::query_as(&format!(
        "select {SETTINGS_COLUMNS} from bot_settings where tenant_id = $1"
    ))
    .bind(tenant)
    .fetch_optional(db)
    .await?
    .found()
}

/// The settings, locked until the transaction ends (a change compares against them).
pub async fn lock_settings(db: impl PgExecutor<'_>, tenant: TenantId) -> Result<Settings> {
    sqlx::query_as(&format!(
        "select {SETTINGS_COLUMNS} from bot_settings where tenant_id = $1 for update"
    ))
    .bind(tenant)
    .fetch_optional(db)
    .await?
    .found()
}

/// A partial change of the settings; `None` keeps the current value.
#[derive(Clone, Debug, Default)]
pub struct SettingsPatch {
    pub welcome_text: Option<String>,
    pub help_text: Option<String>,
    pub handover_text: Option<String>,
    pub closing_text: Option<String>,
    pub already_waiting_text: Option<String>,
    pub stale_button_text: Option<String>,
    pub answer_threshold: Option<f32>,
    pub default_language: Option<String>,
    pub offhours_text: Option<String>,
    pub translations: Option<serde_json::Value>,
    pub timezone: Option<String>,
    /// `Some(None)` sets "always open".
    pub working_hours: Option<Option<serde_json::Value>>,
    pub rating_enabled: Option<bool>,
    pub rating_text: Option<String>,
    pub suggest_threshold: Option<f32>,
    pub synonyms: Option<Vec<String>>,
    pub feedback_enabled: Option<bool>,
    /// `Some(None)` keeps messages for ever.
    pub retention_days: Option<Option<i32>>,
    pub raw_retention_days: Option<i32>,
}

pub async fn update_settings(
    db: impl PgExecutor<'_>,
    tenant: TenantId,
    patch: &SettingsPatch,
) -> Result<Settings> {
    sqlx::query_as(&format!(
        "update bot_settings set
            welcome_text = coalesce($2, welcome_text),
            help_text = coalesce($3, help_text),
            handover_text = coalesce($4, handover_text),
            closing_text = coalesce($5, closing_text),
            already_waiting_text = coalesce($6, already_waiting_text),
            stale_button_text = coalesce($7, stale_button_text),
            answer_threshold = coalesce($8, answer_threshold),
            default_language = coalesce($9, default_language),
            offhours_text = coalesce($10, offhours_text),
            translations = coalesce($11, translations),
            timezone = coalesce($12, timezone),
            working_hours = case when $13 then $14 else working_hours end,
            rating_enabled = coalesce($15, rating_enabled),
            rating_text = coalesce($16, rating_text),
            suggest_threshold = coalesce($17, suggest_threshold),
            synonyms = coalesce($18, synonyms),
            feedback_enabled = coalesce($19, feedback_enabled),
            retention_days = case when $20 then $21 else retention_days end,
            raw_retention_days = coalesce($22, raw_retention_days)
         where tenant_id = $1 returning {SETTINGS_COLUMNS}"
    ))
    .bind(tenant)
    .bind(&patch.welcome_text)
    .bind(&patch.help_text)
    .bind(&patch.handover_text)
    .bind(&patch.closing_text)
    .bind(&patch.already_waiting_text)
    .bind(&patch.stale_button_text)
    .bind(patch.answer_threshold)
    .bind(&patch.default_language)
    .bind(&patch.offhours_text)
    .bind(&patch.translations)
    .bind(&patch.timezone)
    .bind(patch.working_hours.is_some())
    .bind(patch.working_hours.clone().flatten())
    .bind(patch.rating_enabled)
    .bind(&patch.rating_text)
    .bind(patch.suggest_threshold)
    .bind(&patch.synonyms)
    .bind(patch.feedback_enabled)
    .bind(patch.retention_days.is_some())
    .bind(patch.retention_days.flatten())
    .bind(patch.raw_retention_days)
    .fetch_optional(db)
    .await?
    .found()
}
