//! Menus and the buttons under menus and answers.

use super::*;

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct MenuRow {
    pub id: MenuId,
    pub name: String,
    pub text: String,
    pub is_main: bool,
    /// `text` in other languages.
    #[sqlx(json)]
    pub translations: Translations,
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
    /// `label` in other languages.
    #[sqlx(json)]
    pub translations: Translations,
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
            translations: self.translations.clone(),
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

pub(super) const MENU_COLUMNS: &str =
    "id, name, text, is_main, translations, created_at, updated_at";
pub(super) const BUTTON_COLUMNS: &str =
    "id, menu_id, owner_rule_id, row_index, position, label, action,
    rule_id, target_menu_id, url, text, translations";

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
    translations: &Translations,
) -> Result<MenuRow> {
    if is_main {
        clear_main_menu(&mut *conn, tenant).await?;
    }
    Ok(sqlx::query_as(&format!(
        "insert into menus (tenant_id, id, name, text, is_main, translations)
         values ($1, $2, $3, $4, $5, $6) returning {MENU_COLUMNS}"
    ))
    .bind(tenant)
    .bind(id)
    .bind(name)
    .bind(text)
    .bind(is_main)
    .bind(sqlx::types::Json(translations))
    .fetch_one(&mut *conn)
    .await?)
}

pub(super) async fn clear_main_menu(db: impl PgExecutor<'_>, tenant: TenantId) -> Result<()> {
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
    translations: Option<&Translations>,
) -> Result<MenuRow> {
    if is_main == Some(true) {
        clear_main_menu(&mut *conn, tenant).await?;
    }
    sqlx::query_as(&format!(
        "update menus set name = coalesce($3, name), text = coalesce($4, text),
            is_main = coalesce($5, is_main), translations = coalesce($6, translations)
         where tenant_id = $1 and id = $2 returning {MENU_COLUMNS}"
    ))
    .bind(tenant)
    .bind(id)
    .bind(name)
    .bind(text)
    .bind(is_main)
    .bind(translations.map(sqlx::types::Json))
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
                    label, action, rule_id, target_menu_id, url, text, translations)
                 values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
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
            .bind(sqlx::types::Json(&b.translations))
            .execute(&mut *conn)
            .await?;
        }
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
