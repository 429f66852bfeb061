//! A tenant's bot configuration: settings and texts, menus with their buttons, commands.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgExecutor};
use switchboard_core::bot::{BotTexts, Button, ButtonAction};
use switchboard_core::{ButtonId, CommandId, MenuId, RuleId, TenantId};

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

// Menus and buttons ---------------------------------------------------------------------

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct MenuRow {
    pub id: MenuId,
    pub name: String,
    pub text: String,
    pub is_main: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct ButtonRow {
    pub id: ButtonId,
    pub menu_id: Option<MenuId>,
    pub owner_rule_id: Option<RuleId>,
    pub row_index: i32,
    pub position: i32,
    pub label: String,
    pub action: String,
    pub rule_id: Option<RuleId>,
    pub target_menu_id: Option<MenuId>,
    pub url: Option<String>,
    pub text: Option<String>,
}

impl ButtonRow {
    pub fn to_button(&self) -> Option<Button> {
        let action = match self.action.as_str() {
            "rule" => ButtonAction::Rule {
                rule_id: self.rule_id?,
            },
            "text" => ButtonAction::Text {
                text: self.text.clone()?,
            },
            "submenu" => ButtonAction::Submenu {
                menu_id: self.target_menu_id?,
            },
            "url" => ButtonAction::Url {
                url: self.url.clone()?,
            },
            "handover" => ButtonAction::Handover,
            _ => return None,
        };
        Some(Button {
            id: self.id,
            label: self.label.clone(),
            action,
        })
    }
}

/// Groups buttons (sorted by row, then position) into rows.
pub fn rows_of(buttons: &[&ButtonRow]) -> Vec<Vec<Button>> {
    let mut rows: Vec<Vec<Button>> = Vec::new();
    let mut current: Option<i32> = None;
    for b in buttons {
        let Some(button) = b.to_button() else {
            continue;
        };
        if current != Some(b.row_index) {
            rows.push(Vec::new());
            current = Some(b.row_index);
        }
        rows.last_mut().expect("a row was pushed").push(button);
    }
    rows
}

const MENU_COLUMNS: &str = "id, name, text, is_main, created_at, updated_at";
const BUTTON_COLUMNS: &str = "id, menu_id, owner_rule_id, row_index, position, label, action,
    rule_id, target_menu_id, url, text";

pub async fn list_menus(db: impl PgExecutor<'_>, tenant: TenantId) -> Result<Vec<MenuRow>> {
    Ok(sqlx::query_as(&format!(
        "select {MENU_COLUMNS} from menus where tenant_id = $1 order by is_main desc, name, id"
    ))
    .bind(tenant)
    .fetch_all(db)
    .await?)
}

pub async fn get_menu(db: impl PgExecutor<'_>, tenant: TenantId, id: MenuId) -> Result<MenuRow> {
    sqlx::query_as(&format!(
        "select {MENU_COLUMNS} from menus where tenant_id = $1 and id = $2"
    ))
    .bind(tenant)
    .bind(id)
    .fetch_optional(db)
    .await?
    .found()
}

/// All buttons of the tenant, ordered for display.
pub async fn list_buttons(db: impl PgExecutor<'_>, tenant: TenantId) -> Result<Vec<ButtonRow>> {
    Ok(sqlx::query_as(&format!(
        "select {BUTTON_COLUMNS} from buttons where tenant_id = $1
         order by menu_id nulls last, owner_rule_id, row_index, position"
    ))
    .bind(tenant)
    .fetch_all(db)
    .await?)
}

pub async fn menu_buttons(
    db: impl PgExecutor<'_>,
    tenant: TenantId,
    menu: MenuId,
) -> Result<Vec<ButtonRow>> {
    Ok(sqlx::query_as(&format!(
        "select {BUTTON_COLUMNS} from buttons where tenant_id = $1 and menu_id = $2
         order by row_index, position"
    ))
    .bind(tenant)
    .bind(menu)
    .fetch_all(db)
    .await?)
}

pub async fn rule_buttons(
    db: impl PgExecutor<'_>,
    tenant: TenantId,
    rule: RuleId,
) -> Result<Vec<ButtonRow>> {
    Ok(sqlx::query_as(&format!(
        "select {BUTTON_COLUMNS} from buttons where tenant_id = $1 and owner_rule_id = $2
         order by row_index, position"
    ))
    .bind(tenant)
    .bind(rule)
    .fetch_all(db)
    .await?)
}

pub async fn insert_menu(
    conn: &mut PgConnection,
    tenant: TenantId,
    id: MenuId,
    name: &str,
    text: &str,
    is_main: bool,
) -> Result<MenuRow> {
    if is_main {
        clear_main_menu(&mut *conn, tenant).await?;
    }
    Ok(sqlx::query_as(&format!(
        "insert into menus (tenant_id, id, name, text, is_main) values ($1, $2, $3, $4, $5)
         returning {MENU_COLUMNS}"
    ))
    .bind(tenant)
    .bind(id)
    .bind(name)
    .bind(text)
    .bind(is_main)
    .fetch_one(&mut *conn)
    .await?)
}

async fn clear_main_menu(db: impl PgExecutor<'_>, tenant: TenantId) -> Result<()> {
    sqlx::query("update menus set is_main = false where tenant_id = $1 and is_main")
        .bind(tenant)
        .execute(db)
        .await?;
    Ok(())
}

pub async fn update_menu(
    conn: &mut PgConnection,
    tenant: TenantId,
    id: MenuId,
    name: Option<&str>,
    text: Option<&str>,
    is_main: Option<bool>,
) -> Result<MenuRow> {
    if is_main == Some(true) {
        clear_main_menu(&mut *conn, tenant).await?;
    }
    sqlx::query_as(&format!(
        "update menus set name = coalesce($3, name), text = coalesce($4, text),
            is_main = coalesce($5, is_main)
         where tenant_id = $1 and id = $2 returning {MENU_COLUMNS}"
    ))
    .bind(tenant)
    .bind(id)
    .bind(name)
    .bind(text)
    .bind(is_main)
    .fetch_optional(&mut *conn)
    .await?
    .found()
}

pub async fn delete_menu(db: impl PgExecutor<'_>, tenant: TenantId, id: MenuId) -> Result<()> {
    let done = sqlx::query("delete from menus where tenant_id = $1 and id = $2")
        .bind(tenant)
        .bind(id)
        .execute(db)
        .await?;
    if done.rows_affected() == 0 {
        return Err(DbError::NotFound);
    }
    Ok(())
}

/// Who owns a set of buttons.
#[derive(Clone, Copy, Debug)]
pub enum ButtonOwner {
    Menu(MenuId),
    Rule(RuleId),
}

/// Replaces all buttons of a menu or rule with `rows` (ids are kept when given, so
/// buttons already sent to users keep working).
pub async fn replace_buttons(
    conn: &mut PgConnection,
    tenant: TenantId,
    owner: ButtonOwner,
    rows: &[Vec<Button>],
) -> Result<()> {
    let (menu_id, rule_id) = match owner {
        ButtonOwner::Menu(m) => (Some(m), None),
        ButtonOwner::Rule(r) => (None, Some(r)),
    };
    sqlx::query(
        "delete from buttons where tenant_id = $1
           and (menu_id = $2 or owner_rule_id = $3)",
    )
    .bind(tenant)
    .bind(menu_id)
    .bind(rule_id)
    .execute(&mut *conn)
    .await?;
    for (ri, row) in rows.iter().enumerate() {
        for (pi, b) in row.iter().enumerate() {
            let (rule, target, url, text) = match &b.action {
                ButtonAction::Rule { rule_id } => (Some(*rule_id), None, None, None),
                ButtonAction::Submenu { menu_id } => (None, Some(*menu_id), None, None),
                ButtonAction::Url { url } => (None, None, Some(url.as_str()), None),
                ButtonAction::Text { text } => (None, None, None, Some(text.as_str())),
                ButtonAction::Handover => (None, None, None, None),
            };
            sqlx::query(
                "insert into buttons (tenant_id, id, menu_id, owner_rule_id, row_index, position,
                    label, action, rule_id, target_menu_id, url, text)
                 values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
            )
            .bind(tenant)
            .bind(b.id)
            .bind(menu_id)
            .bind(rule_id)
            .bind(ri as i32)
            .bind(pi as i32)
            .bind(&b.label)
            .bind(b.action.kind())
            .bind(rule)
            .bind(target)
            .bind(url)
            .bind(text)
            .execute(&mut *conn)
            .await?;
        }
    }
    Ok(())
}

// Commands ------------------------------------------------------------------------------

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct CommandRow {
    pub id: CommandId,
    pub command: String,
    pub description: String,
    pub response: String,
    pub enabled: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const COMMAND_COLUMNS: &str = "id, command, description, response, enabled, created_at, updated_at";

pub async fn list_commands(db: impl PgExecutor<'_>, tenant: TenantId) -> Result<Vec<CommandRow>> {
    Ok(sqlx::query_as(&format!(
        "select {COMMAND_COLUMNS} from commands where tenant_id = $1 order by command"
    ))
    .bind(tenant)
    .fetch_all(db)
    .await?)
}

pub async fn get_command(
    db: impl PgExecutor<'_>,
    tenant: TenantId,
    id: CommandId,
) -> Result<CommandRow> {
    sqlx::query_as(&format!(
        "select {COMMAND_COLUMNS} from commands where tenant_id = $1 and id = $2"
    ))
    .bind(tenant)
    .bind(id)
    .fetch_optional(db)
    .await?
    .found()
}

pub async fn insert_command(
    db: impl PgExecutor<'_>,
    tenant: TenantId,
    command: &str,
    description: &str,
    response: &str,
    enabled: bool,
) -> Result<CommandRow> {
    Ok(sqlx::query_as(&format!(
        "insert into commands (tenant_id, id, command, description, response, enabled)
         values ($1, $2, $3, $4, $5, $6) returning {COMMAND_COLUMNS}"
    ))
    .bind(tenant)
    .bind(CommandId::new())
    .bind(command)
    .bind(description)
    .bind(response)
    .bind(enabled)
    .fetch_one(db)
    .await?)
}

pub async fn update_command(
    db: impl PgExecutor<'_>,
    tenant: TenantId,
    id: CommandId,
    command: Option<&str>,
    description: Option<&str>,
    response: Option<&str>,
    enabled: Option<bool>,
) -> Result<CommandRow> {
    sqlx::query_as(&format!(
        "update commands set command = coalesce($3, command),
            description = coalesce($4, description), response = coalesce($5, response),
            enabled = coalesce($6, enabled)
         where tenant_id = $1 and id = $2 returning {COMMAND_COLUMNS}"
    ))
    .bind(tenant)
    .bind(id)
    .bind(command)
    .bind(description)
    .bind(response)
    .bind(enabled)
    .fetch_optional(db)
    .await?
    .found()
}

pub async fn delete_command(
    db: impl PgExecutor<'_>,
    tenant: TenantId,
    id: CommandId,
) -> Result<()> {
    let done = sqlx::query("delete from commands where tenant_id = $1 and id = $2")
        .bind(tenant)
        .bind(id)
        .execute(db)
        .await?;
    if done.rows_affected() == 0 {
        return Err(DbError::NotFound);
    }
    Ok(())
}

/// Which of `ids` exist as menus of the tenant (to validate button targets).
pub async fn existing_menu_ids(
    db: impl PgExecutor<'_>,
    tenant: TenantId,
    ids: &[MenuId],
) -> Result<Vec<MenuId>> {
    let raw: Vec<uuid::Uuid> = ids.iter().map(|i| i.0).collect();
    Ok(
        sqlx::query_scalar("select id from menus where tenant_id = $1 and id = any($2)")
            .bind(tenant)
            .bind(&raw)
            .fetch_all(db)
            .await?,
    )
}
