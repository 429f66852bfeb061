//! The tenant's own bot commands (`/prices` → a text); /start, /help and /operator are
//! built in. Every change republishes Telegram's command menu.

use switchboard_core::text::TELEGRAM_TEXT_LIMIT;
use switchboard_core::validate::{self, Invalid};
use switchboard_core::{CommandId, Event, Permission, Translations};
use switchboard_db::config::{self, CommandRow};

use crate::{commit, record, App, AppResult, Ctx};

/// A command as typed; the name may carry its slash.
#[derive(Clone, Debug, Default)]
pub struct CommandInput {
    pub command: String,
    pub description: String,
    pub response: String,
    pub enabled: bool,
    /// `description` and `response` in other languages.
    pub translations: Translations,
}

/// A partial change; `None` keeps what is stored.
#[derive(Clone, Debug, Default)]
pub struct CommandChange {
    pub command: Option<String>,
    pub description: Option<String>,
    pub response: Option<String>,
    pub enabled: Option<bool>,
    pub translations: Option<Translations>,
}

impl From<CommandInput> for CommandChange {
    fn from(c: CommandInput) -> Self {
        CommandChange {
            command: Some(c.command),
            description: Some(c.description),
            response: Some(c.response),
            enabled: Some(c.enabled),
            translations: Some(c.translations),
        }
    }
}

/// `/Prices ` → `Prices` (the check then says whether it is a valid name).
fn normalize_name(name: &str) -> String {
    name.trim().trim_start_matches('/').to_string()
}

impl CommandChange {
    /// Validated and trimmed, ready to store.
    fn checked(self) -> AppResult<CommandChange> {
        let command = self.command.as_deref().map(normalize_name);
        let mut errors = Invalid::new();
        if let Some(n) = &command {
            errors.check("command", validate::command_name(n));
        }
        if let Some(d) = &self.description {
            errors.check("description", validate::text(d, 256));
        }
        if let Some(r) = &self.response {
            errors.check("response", validate::message_text(r));
        }
        let translations = self.translations.map(|t| {
            let t = t.cleaned(
                &[("description", 256), ("response", TELEGRAM_TEXT_LIMIT)],
                "",
                &mut errors,
            );
            t.check("response", "", &mut errors, validate::message_text);
            t
        });
        errors.into_result()?;
        Ok(CommandChange {
            command,
            description: self.description.map(|d| d.trim().to_string()),
            response: self.response.map(|r| r.trim().to_string()),
            enabled: self.enabled,
            translations,
        })
    }
}

pub async fn list(app: &App, ctx: &Ctx) -> AppResult<Vec<CommandRow>> {
    ctx.require(Permission::ReadConfig)?;
    Ok(config::list_commands(&mut *app.read(ctx.tenant).await?, ctx.tenant).await?)
}

pub async fn get(app: &App, ctx: &Ctx, id: CommandId) -> AppResult<CommandRow> {
    ctx.require(Permission::ReadConfig)?;
    Ok(config::get_command(&mut *app.read(ctx.tenant).await?, ctx.tenant, id).await?)
}

pub async fn create(app: &App, ctx: &Ctx, input: CommandInput) -> AppResult<CommandRow> {
    ctx.require(Permission::WriteConfig)?;
    let enabled = input.enabled;
    let c = CommandChange::from(input).checked()?;
    let name = c.command.unwrap_or_default();
    let mut tx = app.begin(ctx.tenant).await?;
    let row = config::insert_command(
        &mut *tx,
        ctx.tenant,
        &name,
        c.description.as_deref().unwrap_or_default(),
        c.response.as_deref().unwrap_or_default(),
        enabled,
        &c.translations.unwrap_or_default(),
    )
    .await?;
    let event = Event::CommandCreated {
        command: row.command.clone(),
    };
    record(&mut tx, ctx, event).await?;
    commit(tx).await?;
    app.config_changed(ctx.tenant, true);
    Ok(row)
}

pub async fn update(
    app: &App,
    ctx: &Ctx,
    id: CommandId,
    change: CommandChange,
) -> AppResult<CommandRow> {
    ctx.require(Permission::WriteConfig)?;
    let c = change.checked()?;
    let mut tx = app.begin(ctx.tenant).await?;
    let row = config::update_command(
        &mut *tx,
        ctx.tenant,
        id,
        c.command.as_deref(),
        c.description.as_deref(),
        c.response.as_deref(),
        c.enabled,
        c.translations.as_ref(),
    )
    .await?;
    let event = Event::CommandUpdated {
        command: row.command.clone(),
    };
    record(&mut tx, ctx, event).await?;
    commit(tx).await?;
    app.config_changed(ctx.tenant, true);
    Ok(row)
}

/// Deletes a command; returns what it was.
pub async fn delete(app: &App, ctx: &Ctx, id: CommandId) -> AppResult<CommandRow> {
    ctx.require(Permission::WriteConfig)?;
    let mut tx = app.begin(ctx.tenant).await?;
    let row = config::get_command(&mut *tx, ctx.tenant, id).await?;
    config::delete_command(&mut *tx, ctx.tenant, id).await?;
    let event = Event::CommandDeleted {
        command: row.command.clone(),
    };
    record(&mut tx, ctx, event).await?;
    commit(tx).await?;
    app.config_changed(ctx.tenant, true);
    Ok(row)
}
