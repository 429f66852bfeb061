//! Buttons as the API reads and writes them: a flat object with an `action` and the field
//! that action needs.

use serde::{Deserialize, Serialize};
use switchboard_app::buttons::ButtonInput;
use switchboard_core::bot::{Button, ButtonAction};
use switchboard_core::Translations;
use utoipa::ToSchema;
use uuid::Uuid;

/// A button to save. `action` is one of `rule` (needs `rule_id`), `text` (needs `text`),
/// `submenu` (needs `menu_id`), `url` (needs `url`), `handover`.
#[derive(Clone, Debug, Deserialize, ToSchema)]
pub struct ButtonIn {
    /// Keep a button's id when editing, so buttons already sent to users keep working.
    pub id: Option<Uuid>,
    pub label: String,
    pub action: String,
    pub rule_id: Option<Uuid>,
    pub menu_id: Option<Uuid>,
    pub url: Option<String>,
    pub text: Option<String>,
    /// The label (`{"ru": {"label": "…"}}`) in other languages than the organization's default, by language
    /// code (`en`, `ru`): a Telegram user of that language gets these words.
    #[serde(default)]
    #[schema(value_type = std::collections::BTreeMap<String, std::collections::BTreeMap<String, String>>)]
    pub translations: Translations,
}

impl From<ButtonIn> for ButtonInput {
    fn from(b: ButtonIn) -> Self {
        ButtonInput {
            id: b.id,
            label: b.label,
            action: b.action,
            rule_id: b.rule_id,
            menu_id: b.menu_id,
            url: b.url,
            text: b.text,
            translations: b.translations,
        }
    }
}

/// Rows of buttons as the application layer takes them.
pub fn rows_in(rows: Vec<Vec<ButtonIn>>) -> Vec<Vec<ButtonInput>> {
    rows.into_iter()
        .map(|r| r.into_iter().map(ButtonInput::from).collect())
        .collect()
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ButtonOut {
    pub id: Uuid,
    pub label: String,
    pub action: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule_id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub menu_id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// The label in other languages.
    #[schema(value_type = std::collections::BTreeMap<String, std::collections::BTreeMap<String, String>>)]
    pub translations: Translations,
}

impl From<&Button> for ButtonOut {
    fn from(b: &Button) -> Self {
        let mut out = ButtonOut {
            id: b.id.0,
            label: b.label.clone(),
            action: b.action.kind().to_string(),
            rule_id: None,
            menu_id: None,
            url: None,
            text: None,
            translations: b.translations.clone(),
        };
        match &b.action {
            ButtonAction::Rule { rule_id } => out.rule_id = Some(rule_id.0),
            ButtonAction::Submenu { menu_id } => out.menu_id = Some(menu_id.0),
            ButtonAction::Url { url } => out.url = Some(url.clone()),
            ButtonAction::Text { text } => out.text = Some(text.clone()),
            ButtonAction::Handover => {}
        }
        out
    }
}

pub fn rows_out(rows: &[Vec<Button>]) -> Vec<Vec<ButtonOut>> {
    rows.iter()
        .map(|r| r.iter().map(ButtonOut::from).collect())
        .collect()
}
