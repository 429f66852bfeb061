//! The tenant's Telegram bot: connect it with a token from @BotFather (checked with
//! Telegram, stored encrypted), switch how it receives updates and how fast it may send,
//! register its webhook again, disconnect it.

use switchboard_core::validate::Problem;
use switchboard_core::Permission;
use switchboard_db::bots::{self, Bot};
use switchboard_telegram::setup::{BotMode, WebhookInfo};

use crate::{App, AppError, AppResult, Ctx};

/// The connected bot, if any.
pub async fn get(app: &App, ctx: &Ctx) -> AppResult<Option<Bot>> {
    ctx.require(Permission::ReadConfig)?;
    Ok(bots::get_live(&mut *app.read(ctx.tenant).await?, ctx.tenant).await?)
}

/// `webhook` or `polling`.
pub fn parse_mode(mode: &str) -> AppResult<BotMode> {
    mode.parse()
        .map_err(|e: String| AppError::invalid("mode", Problem::coded("bot_mode", e)))
}

/// Connects the bot, or replaces its token.
pub async fn connect(app: &App, ctx: &Ctx, token: &str, mode: Option<&str>) -> AppResult<Bot> {
    ctx.require(Permission::WriteConfig)?;
    let mode = mode.map(parse_mode).transpose()?;
    Ok(app
        .telegram
        .connect_bot(ctx.tenant, token, mode, ctx.actor())
        .await?)
}

/// Changes how the bot receives updates and/or its send rate (`Some(None)`: the
/// platform's default). Everything is checked before anything changes.
pub async fn change(
    app: &App,
    ctx: &Ctx,
    mode: Option<&str>,
    send_rate: Option<Option<i32>>,
) -> AppResult<Bot> {
    ctx.require(Permission::WriteConfig)?;
    let mode = mode.map(parse_mode).transpose()?;
    if let Some(Some(rate)) = send_rate {
        if !(1..=1000).contains(&rate) {
            return Err(AppError::invalid(
                "send_rate",
                Problem::coded("between", "must be between 1 and 1000 messages per second")
                    .with("min", 1)
                    .with("max", 1000),
            ));
        }
    }
    if mode.is_none() && send_rate.is_none() {
        return Err(AppError::invalid(
            "mode",
            Problem::coded("nothing_to_change", "give mode, send_rate or both"),
        ));
    }
    let mut bot = None;
    if let Some(rate) = send_rate {
        bot = Some(
            app.telegram
                .set_bot_send_rate(ctx.tenant, rate, ctx.actor())
                .await?,
        );
    }
    if let Some(mode) = mode {
        bot = Some(
            app.telegram
                .set_bot_mode(ctx.tenant, mode, ctx.actor())
                .await?,
        );
    }
    bot.ok_or(AppError::Internal)
}

/// Disconnects the bot: its webhook is deleted and its token forgotten; history stays.
pub async fn remove(app: &App, ctx: &Ctx) -> AppResult<()> {
    ctx.require(Permission::WriteConfig)?;
    Ok(app.telegram.remove_bot(ctx.tenant, ctx.actor()).await?)
}

/// Telegram's view of the webhook (a call to Telegram).
pub async fn webhook_info(app: &App, ctx: &Ctx) -> AppResult<WebhookInfo> {
    ctx.require(Permission::ReadConfig)?;
    Ok(app.telegram.webhook_info(ctx.tenant).await?)
}

/// Registers the webhook again, with a fresh secret.
pub async fn reregister_webhook(app: &App, ctx: &Ctx) -> AppResult<Bot> {
    ctx.require(Permission::WriteConfig)?;
    Ok(app
        .telegram
        .reregister_webhook(ctx.tenant, ctx.actor())
        .await?)
}
