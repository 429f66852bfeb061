//! Menus: a text with rows of buttons; the main one is sent under the welcome text.

use switchboard_core::bot::Button;
use switchboard_core::text::TELEGRAM_TEXT_LIMIT;
use switchboard_core::validate::{self, Invalid, Problem};
use switchboard_core::{Event, MenuId, Permission, Translations};
use switchboard_db::config::{self, ButtonOwner, ButtonRow, MenuRow};

use crate::buttons::{validate_rows, ButtonInput};
use crate::{commit, record, App, AppResult, Ctx};

#[derive(Clone, Debug, Default)]
pub struct MenuInput {
    pub name: String,
    pub text: String,
    pub is_main: bool,
    pub rows: Vec<Vec<ButtonInput>>,
    /// `text` in other languages.
    pub translations: Translations,
}

/// A partial change; `None` keeps what is stored, `rows` replaces all buttons.
#[derive(Clone, Debug, Default)]
pub struct MenuChange {
    pub name: Option<String>,
    pub text: Option<String>,
    pub is_main: Option<bool>,
    pub rows: Option<Vec<Vec<ButtonInput>>>,
    pub translations: Option<Translations>,
}

impl From<MenuInput> for MenuChange {
    fn from(m: MenuInput) -> Self {
        MenuChange {
            name: Some(m.name),
            text: Some(m.text),
            is_main: Some(m.is_main),
            rows: Some(m.rows),
            translations: Some(m.translations),
        }
    }
}

/// A menu and its buttons.
pub struct Menu {
    pub menu: MenuRow,
    pub buttons: Vec<ButtonRow>,
}

/// All menus (the main one first) and all the tenant's buttons.
pub async fn list(app: &App, ctx: &Ctx) -> AppResult<(Vec<MenuRow>, Vec<ButtonRow>)> {
    ctx.require(Permission::ReadConfig)?;
    let mut db = app.read(ctx.tenant).await?;
    let menus = config::list_menus(&mut *db, ctx.tenant).await?;
    let buttons = config::list_buttons(&mut *db, ctx.tenant).await?;
    Ok((menus, buttons))
}

pub async fn get(app: &App, ctx: &Ctx, id: MenuId) -> AppResult<Menu> {
    ctx.require(Permission::ReadConfig)?;
    let mut db = app.read(ctx.tenant).await?;
    let menu = config::get_menu(&mut *db, ctx.tenant, id).await?;
    let buttons = config::menu_buttons(&mut *db, ctx.tenant, id).await?;
    Ok(Menu { menu, buttons })
}

/// A change as it will be stored: the buttons checked into the bot's, the translations
/// cleaned.
struct Checked {
    rows: Option<Vec<Vec<Button>>>,
    translations: Option<Translations>,
}

/// Checks a change; the menu's own id (when editing) must not be a button's target.
async fn checked(
    app: &App,
    ctx: &Ctx,
    id: Option<MenuId>,
    change: &MenuChange,
) -> AppResult<Checked> {
    let mut errors = Invalid::new();
    if let Some(n) = &change.name {
        errors.check("name", validate::text(n, 100));
    }
    if let Some(t) = &change.text {
        errors.check("text", validate::message_text(t));
    }
    let translations = change.translations.as_ref().map(|t| {
        let t = t.cleaned(&[("text", TELEGRAM_TEXT_LIMIT)], "", &mut errors);
        t.check("text", "", &mut errors, validate::message_text);
        t
    });
    let rows = match &change.rows {
        Some(rows) => {
            if let Some(id) = id {
                if rows.iter().flatten().any(|b| b.menu_id == Some(id.0)) {
                    errors.add(
                        "rows",
                        Problem::coded("menu_opens_itself", "a menu cannot open itself"),
                    );
                }
            }
            Some(
                validate_rows(
                    &mut *app.read(ctx.tenant).await?,
                    ctx.tenant,
                    rows,
                    "rows",
                    &mut errors,
                )
                .await?,
            )
        }
        None => None,
    };
    errors.into_result()?;
    Ok(Checked { rows, translations })
}

pub async fn create(app: &App, ctx: &Ctx, input: MenuInput) -> AppResult<Menu> {
    ctx.require(Permission::WriteConfig)?;
    let change = MenuChange::from(input);
    let checked = checked(app, ctx, None, &change).await?;
    let rows = checked.rows.unwrap_or_default();
    let translations = checked.translations.unwrap_or_default();
    let id = MenuId::new();
    let name = change.name.as_deref().unwrap_or_default().trim();
    let text = change.text.as_deref().unwrap_or_default().trim();
    let mut tx = app.begin(ctx.tenant).await?;
    let is_main = change.is_main.unwrap_or(false);
    config::insert_menu(&mut tx, ctx.tenant, id, name, text, is_main, &translations).await?;
    config::replace_buttons(&mut tx, ctx.tenant, ButtonOwner::Menu(id), &rows).await?;
    let event = Event::MenuCreated {
        menu_id: id.0,
        name: name.to_string(),
    };
    record(&mut tx, ctx, event).await?;
    commit(tx).await?;
    app.config_changed(ctx.tenant, false);
    get(app, ctx, id).await
}

pub async fn update(app: &App, ctx: &Ctx, id: MenuId, change: MenuChange) -> AppResult<Menu> {
    ctx.require(Permission::WriteConfig)?;
    config::get_menu(&mut *app.read(ctx.tenant).await?, ctx.tenant, id).await?;
    let Checked { rows, translations } = checked(app, ctx, Some(id), &change).await?;
    let mut tx = app.begin(ctx.tenant).await?;
    let menu = config::update_menu(
        &mut tx,
        ctx.tenant,
        id,
        change.name.as_deref().map(str::trim),
        change.text.as_deref().map(str::trim),
        change.is_main,
        translations.as_ref(),
    )
    .await?;
    if let Some(rows) = &rows {
        config::replace_buttons(&mut tx, ctx.tenant, ButtonOwner::Menu(id), rows).await?;
    }
    let event = Event::MenuUpdated {
        menu_id: id.0,
        name: menu.name.clone(),
    };
    record(&mut tx, ctx, event).await?;
    commit(tx).await?;
    app.config_changed(ctx.tenant, false);
    get(app, ctx, id).await
}

/// Deletes a menu and the buttons that opened it; returns what it was.
pub async fn delete(app: &App, ctx: &Ctx, id: MenuId) -> AppResult<MenuRow> {
    ctx.require(Permission::WriteConfig)?;
    let mut tx = app.begin(ctx.tenant).await?;
    let menu = config::get_menu(&mut *tx, ctx.tenant, id).await?;
    config::delete_menu(&mut *tx, ctx.tenant, id).await?;
    let event = Event::MenuDeleted {
        menu_id: id.0,
        name: menu.name.clone(),
    };
    record(&mut tx, ctx, event).await?;
    commit(tx).await?;
    app.config_changed(ctx.tenant, false);
    Ok(menu)
}
