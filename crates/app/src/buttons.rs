//! Rows of buttons under a menu or an answer, as typed (by the API's JSON or the panel's
//! buttons editor), checked into the bot's domain buttons.

use switchboard_core::bot::{Button, ButtonAction};
use switchboard_core::validate::{self, Invalid, Problem};
use switchboard_core::{ButtonId, MenuId, RuleId, TenantId, Translations};
use switchboard_db::{config, rules};
use uuid::Uuid;

/// A button to save. `action` is one of `rule` (needs `rule_id`), `text` (needs `text`),
/// `submenu` (needs `menu_id`), `url` (needs `url`), `handover`.
#[derive(Clone, Debug, Default, serde::Deserialize)]
pub struct ButtonInput {
    /// Keep a button's id when editing, so buttons already sent to users keep working.
    pub id: Option<Uuid>,
    pub label: String,
    pub action: String,
    pub rule_id: Option<Uuid>,
    pub menu_id: Option<Uuid>,
    pub url: Option<String>,
    pub text: Option<String>,
    /// The label in other languages: `{"ru": {"label": "…"}}`.
    #[serde(default)]
    pub translations: Translations,
}

const MAX_PER_ROW: usize = 8;
const MAX_ROWS: usize = 20;
const MAX_BUTTONS: usize = 100;

/// Names the button (its label) in each problem.
struct Labelled<'a> {
    errors: &'a mut Invalid,
    label: &'a str,
}

impl Labelled<'_> {
    fn add(&mut self, field: &str, problem: impl Into<Problem>) {
        let problem = problem.into();
        if self.label.is_empty() {
            self.errors.add(field, problem);
        } else {
            self.errors.add(field, problem.with("button", self.label));
        }
    }

    fn check(&mut self, field: &str, result: Result<(), Problem>) {
        if let Err(m) = result {
            self.add(field, m);
        }
    }
}

/// Validates rows of buttons (targets must exist in the tenant) into domain buttons.
pub(crate) async fn validate_rows(
    db: &mut switchboard_db::PgConnection,
    tenant: TenantId,
    rows: &[Vec<ButtonInput>],
    field: &str,
    errors: &mut Invalid,
) -> Result<Vec<Vec<Button>>, switchboard_db::DbError> {
    if rows.len() > MAX_ROWS {
        errors.add(
            field,
            Problem::coded("too_many_rows", format!("at most {MAX_ROWS} rows"))
                .with("max", MAX_ROWS),
        );
    }
    if rows.iter().map(Vec::len).sum::<usize>() > MAX_BUTTONS {
        errors.add(
            field,
            Problem::coded("too_many_buttons", format!("at most {MAX_BUTTONS} buttons"))
                .with("max", MAX_BUTTONS),
        );
    }
    let rule_ids: Vec<RuleId> = rows
        .iter()
        .flatten()
        .filter_map(|b| b.rule_id.map(RuleId))
        .collect();
    let menu_ids: Vec<MenuId> = rows
        .iter()
        .flatten()
        .filter_map(|b| b.menu_id.map(MenuId))
        .collect();
    let known_rules = if rule_ids.is_empty() {
        Vec::new()
    } else {
        rules::existing_ids(&mut *db, tenant, &rule_ids).await?
    };
    let known_menus = if menu_ids.is_empty() {
        Vec::new()
    } else {
        config::existing_menu_ids(&mut *db, tenant, &menu_ids).await?
    };
    let mut out = Vec::new();
    for (ri, row) in rows.iter().enumerate() {
        if row.len() > MAX_PER_ROW {
            errors.add(
                &format!("{field}[{ri}]"),
                Problem::coded(
                    "too_many_in_row",
                    format!("at most {MAX_PER_ROW} buttons in a row"),
                )
                .with("max", MAX_PER_ROW),
            );
        }
        let mut out_row = Vec::new();
        for (bi, b) in row.iter().enumerate() {
            let f = format!("{field}[{ri}][{bi}]");
            // Messages name the button, so they make sense wherever they are shown.
            let label = b.label.trim().to_string();
            let mut errors = Labelled {
                errors: &mut *errors,
                label: &label,
            };
            errors.check(&format!("{f}.label"), validate::text(&b.label, 64));
            let translations =
                b.translations
                    .cleaned(&[("label", 64)], &format!("{f}."), &mut *errors.errors);
            let action = match b.action.as_str() {
                "rule" => match b.rule_id.map(RuleId) {
                    Some(id) if known_rules.contains(&id) => {
                        Some(ButtonAction::Rule { rule_id: id })
                    }
                    Some(_) => {
                        errors.add(
                            &format!("{f}.rule_id"),
                            Problem::coded("no_such_rule", "no such rule"),
                        );
                        None
                    }
                    None => {
                        errors.add(
                            &format!("{f}.rule_id"),
                            Problem::coded("button_rule_required", "is required for a rule button"),
                        );
                        None
                    }
                },
                "submenu" => match b.menu_id.map(MenuId) {
                    Some(id) if known_menus.contains(&id) => {
                        Some(ButtonAction::Submenu { menu_id: id })
                    }
                    Some(_) => {
                        errors.add(
                            &format!("{f}.menu_id"),
                            Problem::coded("no_such_menu", "no such menu"),
                        );
                        None
                    }
                    None => {
                        errors.add(
                            &format!("{f}.menu_id"),
                            Problem::coded(
                                "button_menu_required",
                                "is required for a submenu button",
                            ),
                        );
                        None
                    }
                },
                "url" => match &b.url {
                    Some(url) => match validate::button_url(url) {
                        Ok(()) => Some(ButtonAction::Url { url: url.clone() }),
                        Err(m) => {
                            errors.add(&format!("{f}.url"), m);
                            None
                        }
                    },
                    None => {
                        errors.add(
                            &format!("{f}.url"),
                            Problem::coded("button_url_required", "is required for a link button"),
                        );
                        None
                    }
                },
                "text" => match &b.text {
                    Some(text) => match validate::message_text(text) {
                        Ok(()) => Some(ButtonAction::Text { text: text.clone() }),
                        Err(m) => {
                            errors.add(&format!("{f}.text"), m);
                            None
                        }
                    },
                    None => {
                        errors.add(
                            &format!("{f}.text"),
                            Problem::coded("button_text_required", "is required for a text button"),
                        );
                        None
                    }
                },
                "handover" => Some(ButtonAction::Handover),
                other => {
                    errors.add(
                        &format!("{f}.action"),
                        format!("unknown action `{other}` (rule, text, submenu, url or handover)"),
                    );
                    None
                }
            };
            if let Some(action) = action {
                out_row.push(Button {
                    id: b.id.map(ButtonId).unwrap_or_default(),
                    label: b.label.trim().to_string(),
                    action,
                    translations,
                });
            }
        }
        if !out_row.is_empty() {
            out.push(out_row);
        }
    }
    Ok(out)
}
