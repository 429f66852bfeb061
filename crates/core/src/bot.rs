//! What the bot does with one inbound event: a pure function of the tenant's bot
//! configuration, the conversation's status and the event. Its [`Decision`] lists the
//! replies to send, the new status and what to record; the caller stores and delivers.

use std::collections::HashMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::conversation::{ConvStatus, HandoverReason};
use crate::ids::{ButtonId, MenuId, RuleId};
use crate::matcher::{Candidate, MatchResult, MatcherIndex};
use crate::text::Lang;

/// What a button does when pressed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ButtonAction {
    /// Send the answer of a rule.
    Rule { rule_id: RuleId },
    /// Send a fixed text.
    Text { text: String },
    /// Show another menu.
    Submenu { menu_id: MenuId },
    /// Open a link (a URL button; Telegram opens it, no callback).
    Url { url: String },
    /// Hand the conversation to an operator.
    Handover,
}

impl ButtonAction {
    pub fn kind(&self) -> &'static str {
        match self {
            ButtonAction::Rule { .. } => "rule",
            ButtonAction::Text { .. } => "text",
            ButtonAction::Submenu { .. } => "submenu",
            ButtonAction::Url { .. } => "url",
            ButtonAction::Handover => "handover",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Button {
    pub id: ButtonId,
    pub label: String,
    pub action: ButtonAction,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Menu {
    pub id: MenuId,
    /// The message sent with the buttons.
    pub text: String,
    pub rows: Vec<Vec<Button>>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    pub id: RuleId,
    pub title: String,
    pub answer: String,
    pub rows: Vec<Vec<Button>>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Command {
    pub name: String,
    pub description: String,
    pub response: String,
}

/// The texts the bot says by itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BotTexts {
    pub welcome_text: String,
    pub help_text: String,
    pub handover_text: String,
    pub closing_text: String,
    /// Sent when a hand-over button is pressed while already waiting for an operator.
    pub already_waiting_text: String,
    /// Shown (as a callback notification) for a button that no longer exists.
    pub stale_button_text: String,
}

impl BotTexts {
    pub fn defaults(lang: Lang) -> Self {
        match lang {
            Lang::En => Self {
                welcome_text: "Hello! I am the support bot. Ask your question or choose a topic below.".into(),
                help_text: "Write your question in your own words, or use the menu: /start. To talk to a person, send /operator.".into(),
                handover_text: "I am passing your question to an operator. Please wait, they will reply here.".into(),
                closing_text: "The conversation is closed. If you have another question, just write here.".into(),
                already_waiting_text: "An operator will reply soon.".into(),
                stale_button_text: "This button is no longer available.".into(),
            },
            Lang::Ru => Self {
                welcome_text: "Здравствуйте! Я бот поддержки. Задайте вопрос или выберите тему ниже.".into(),
                help_text: "Напишите вопрос своими словами или откройте меню: /start. Чтобы поговорить с человеком, отправьте /operator.".into(),
                handover_text: "Передаю ваш вопрос оператору. Пожалуйста, подождите — ответ придёт сюда.".into(),
                closing_text: "Диалог закрыт. Если появится новый вопрос, просто напишите сюда.".into(),
                already_waiting_text: "Оператор скоро ответит.".into(),
                stale_button_text: "Эта кнопка больше не действует.".into(),
            },
        }
    }
}

/// Everything the bot needs to decide, built from the tenant's configuration and cached.
#[derive(Debug)]
pub struct BotConfig {
    pub texts: BotTexts,
    /// Minimum matcher score for answering with a rule.
    pub answer_threshold: f32,
    pub main_menu: Option<MenuId>,
    pub menus: HashMap<MenuId, Menu>,
    pub rules: HashMap<RuleId, Rule>,
    pub commands: HashMap<String, Command>,
    pub matcher: Arc<MatcherIndex>,
}

impl BotConfig {
    fn button(&self, id: ButtonId) -> Option<&Button> {
        self.menus
            .values()
            .flat_map(|m| m.rows.iter().flatten())
            .chain(self.rules.values().flat_map(|r| r.rows.iter().flatten()))
            .find(|b| b.id == id)
    }
}

/// A parsed inbound update, as far as the bot cares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Inbound {
    Text(String),
    Command {
        name: String,
        args: String,
    },
    Callback {
        data: String,
    },
    /// A photo, document, voice, sticker, … (`kind`), with its caption.
    Media {
        kind: String,
        caption: Option<String>,
    },
}

/// A button as sent to Telegram.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum OutButton {
    Callback { label: String, data: String },
    Url { label: String, url: String },
}

/// One message the bot sends.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reply {
    pub text: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keyboard: Vec<Vec<OutButton>>,
    /// The rule whose answer this is, if any.
    #[serde(skip)]
    pub rule_id: Option<RuleId>,
}

/// How a message was matched, stored on the inbound message row.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MatchInfo {
    pub rule_id: Option<RuleId>,
    pub score: f32,
    pub threshold: f32,
    pub candidates: Vec<Candidate>,
    pub terms: Vec<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    /// The conversation's status after this event.
    pub status: ConvStatus,
    pub replies: Vec<Reply>,
    /// Set when this event hands the conversation over.
    pub handover: Option<HandoverReason>,
    pub matched: Option<MatchInfo>,
    /// For callbacks: the notification text (`Some("")` answers silently).
    pub callback_answer: Option<String>,
    /// The button pressed, for the log.
    pub button: Option<(ButtonId, String)>,
}

impl Decision {
    fn stay(status: ConvStatus) -> Self {
        Self {
            status,
            replies: Vec::new(),
            handover: None,
            matched: None,
            callback_answer: None,
            button: None,
        }
    }
}

/// Callback data of a menu or rule button: `b:` and the id's 32 hex digits (34 bytes).
pub fn button_callback_data(id: ButtonId) -> String {
    format!("b:{}", id.0.simple())
}

fn parse_button_callback(data: &str) -> Option<ButtonId> {
    let hex = data.strip_prefix("b:")?;
    uuid::Uuid::try_parse(hex).ok().map(ButtonId)
}

/// Renders rows of buttons for Telegram.
pub fn keyboard(rows: &[Vec<Button>]) -> Vec<Vec<OutButton>> {
    rows.iter()
        .map(|row| {
            row.iter()
                .map(|b| match &b.action {
                    ButtonAction::Url { url } => OutButton::Url {
                        label: b.label.clone(),
                        url: url.clone(),
                    },
                    _ => OutButton::Callback {
                        label: b.label.clone(),
                        data: button_callback_data(b.id),
                    },
                })
                .collect::<Vec<_>>()
        })
        .filter(|row: &Vec<OutButton>| !row.is_empty())
        .collect()
}

/// Decides what to do with one inbound event of a conversation in `status`
/// (`Closed` means the event opens a new conversation).
pub fn decide(config: &BotConfig, status: ConvStatus, inbound: &Inbound) -> Decision {
    let status = if status == ConvStatus::Closed {
        ConvStatus::Bot
    } else {
        status
    };
    match inbound {
        Inbound::Callback { data } => on_callback(config, status, data),
        // With humans involved, whatever the user writes goes to the desk.
        _ if status.with_humans() => Decision::stay(status),
        Inbound::Command { name, args } => on_command(config, status, name, args),
        Inbound::Text(text) => on_text(config, status, text),
        Inbound::Media { .. } => handover(config, HandoverReason::Media),
    }
}

fn handover(config: &BotConfig, reason: HandoverReason) -> Decision {
    Decision {
        status: ConvStatus::Waiting,
        replies: vec![Reply {
            text: config.texts.handover_text.clone(),
            ..Reply::default()
        }],
        handover: Some(reason),
        ..Decision::stay(ConvStatus::Waiting)
    }
}

fn text_reply(text: &str) -> Reply {
    Reply {
        text: text.to_string(),
        ..Reply::default()
    }
}

fn menu_reply(config: &BotConfig, menu_id: MenuId, text_override: Option<&str>) -> Option<Reply> {
    let menu = config.menus.get(&menu_id)?;
    Some(Reply {
        text: text_override.unwrap_or(&menu.text).to_string(),
        keyboard: keyboard(&menu.rows),
        rule_id: None,
    })
}

fn rule_reply(rule: &Rule) -> Reply {
    Reply {
        text: rule.answer.clone(),
        keyboard: keyboard(&rule.rows),
        rule_id: Some(rule.id),
    }
}

fn on_command(config: &BotConfig, status: ConvStatus, name: &str, args: &str) -> Decision {
    let reply = match name {
        "start" => config
            .main_menu
            .and_then(|m| menu_reply(config, m, Some(&config.texts.welcome_text)))
            .unwrap_or_else(|| text_reply(&config.texts.welcome_text)),
        "help" => text_reply(&config.texts.help_text),
        "operator" => return handover(config, HandoverReason::Requested),
        other => match config.commands.get(other) {
            Some(cmd) => text_reply(&cmd.response),
            // An unknown command may still be a question ("/delivery cost").
            None if !args.trim().is_empty() => return on_text(config, status, args),
            None => text_reply(&config.texts.help_text),
        },
    };
    Decision {
        replies: vec![reply],
        ..Decision::stay(status)
    }
}

fn on_text(config: &BotConfig, status: ConvStatus, text: &str) -> Decision {
    let result: MatchResult = config.matcher.find(text);
    let threshold = config.answer_threshold;
    let best = result
        .best()
        .filter(|c| c.score >= threshold)
        .and_then(|c| config.rules.get(&c.rule_id));
    let info = MatchInfo {
        rule_id: best.map(|r| r.id),
        score: result.best().map_or(0.0, |c| c.score),
        threshold,
        candidates: result.candidates.clone(),
        terms: result.terms.clone(),
    };
    let mut decision = match best {
        Some(rule) => Decision {
            replies: vec![rule_reply(rule)],
            ..Decision::stay(status)
        },
        None => handover(config, HandoverReason::NoMatch),
    };
    decision.matched = Some(info);
    decision
}

fn on_callback(config: &BotConfig, status: ConvStatus, data: &str) -> Decision {
    let Some(button) = parse_button_callback(data).and_then(|id| config.button(id)) else {
        return Decision {
            callback_answer: Some(config.texts.stale_button_text.clone()),
            ..Decision::stay(status)
        };
    };
    let pressed = Some((button.id, button.label.clone()));
    let mut decision = match &button.action {
        ButtonAction::Handover if status.with_humans() => Decision {
            callback_answer: Some(config.texts.already_waiting_text.clone()),
            ..Decision::stay(status)
        },
        ButtonAction::Handover => handover(config, HandoverReason::Button),
        ButtonAction::Rule { rule_id } => match config.rules.get(rule_id) {
            Some(rule) => Decision {
                replies: vec![rule_reply(rule)],
                ..Decision::stay(status)
            },
            None => Decision {
                callback_answer: Some(config.texts.stale_button_text.clone()),
                ..Decision::stay(status)
            },
        },
        ButtonAction::Text { text } => Decision {
            replies: vec![text_reply(text)],
            ..Decision::stay(status)
        },
        ButtonAction::Submenu { menu_id } => match menu_reply(config, *menu_id, None) {
            Some(reply) => Decision {
                replies: vec![reply],
                ..Decision::stay(status)
            },
            None => Decision {
                callback_answer: Some(config.texts.stale_button_text.clone()),
                ..Decision::stay(status)
            },
        },
        // URL buttons never call back; treat a forged one as stale.
        ButtonAction::Url { .. } => Decision {
            callback_answer: Some(config.texts.stale_button_text.clone()),
            ..Decision::stay(status)
        },
    };
    decision.callback_answer.get_or_insert_with(String::new);
    decision.button = pressed;
    decision
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matcher::RuleSpec;

    struct Fixture {
        config: BotConfig,
        rule: RuleId,
        submenu: MenuId,
        b_rule: ButtonId,
        b_text: ButtonId,
        b_sub: ButtonId,
        b_handover: ButtonId,
        b_rule_in_answer: ButtonId,
    }

    fn fixture() -> Fixture {
        let rule = RuleId::new();
        let main = MenuId::new();
        let submenu = MenuId::new();
        let (b_rule, b_text, b_sub, b_handover, b_url, b_rule_in_answer) = (
            ButtonId::new(),
            ButtonId::new(),
            ButtonId::new(),
            ButtonId::new(),
            ButtonId::new(),
            ButtonId::new(),
        );
        let btn = |id, label: &str, action| Button {
            id,
            label: label.into(),
            action,
        };
        let mut menus = HashMap::new();
        menus.insert(
            main,
            Menu {
                id: main,
                text: "Main".into(),
                rows: vec![
                    vec![
                        btn(b_rule, "Hours", ButtonAction::Rule { rule_id: rule }),
                        btn(
                            b_text,
                            "Hi",
                            ButtonAction::Text {
                                text: "Hello there".into(),
                            },
                        ),
                    ],
                    vec![btn(
                        b_sub,
                        "More",
                        ButtonAction::Submenu { menu_id: submenu },
                    )],
                    vec![
                        btn(b_handover, "Human", ButtonAction::Handover),
                        btn(
                            b_url,
                            "Site",
                            ButtonAction::Url {
                                url: "https://example.com".into(),
                            },
                        ),
                    ],
                ],
            },
        );
        menus.insert(
            submenu,
            Menu {
                id: submenu,
                text: "More topics".into(),
                rows: vec![],
            },
        );
        let mut rules = HashMap::new();
        rules.insert(
            rule,
            Rule {
                id: rule,
                title: "Opening hours".into(),
                answer: "We are open 9–18.".into(),
                rows: vec![vec![btn(
                    b_rule_in_answer,
                    "Back",
                    ButtonAction::Submenu { menu_id: main },
                )]],
            },
        );
        let mut commands = HashMap::new();
        commands.insert(
            "prices".to_string(),
            Command {
                name: "prices".into(),
                description: "Prices".into(),
                response: "See our prices".into(),
            },
        );
        let matcher = MatcherIndex::build(&[RuleSpec {
            id: rule,
            title: "Opening hours".into(),
            examples: vec!["when are you open".into(), "opening hours".into()],
            keywords: vec![],
            priority: 0,
        }]);
        Fixture {
            config: BotConfig {
                texts: BotTexts::defaults(Lang::En),
                answer_threshold: 0.5,
                main_menu: Some(main),
                menus,
                rules,
                commands,
                matcher: Arc::new(matcher),
            },
            rule,
            submenu,
            b_rule,
            b_text,
            b_sub,
            b_handover,
            b_rule_in_answer,
        }
    }

    fn cmd(name: &str) -> Inbound {
        Inbound::Command {
            name: name.into(),
            args: String::new(),
        }
    }

    fn press(id: ButtonId) -> Inbound {
        Inbound::Callback {
            data: button_callback_data(id),
        }
    }

    #[test]
    fn start_sends_welcome_with_the_main_menu() {
        let f = fixture();
        let d = decide(&f.config, ConvStatus::Bot, &cmd("start"));
        assert_eq!(d.status, ConvStatus::Bot);
        assert_eq!(d.replies.len(), 1);
        assert_eq!(d.replies[0].text, f.config.texts.welcome_text);
        let kb = &d.replies[0].keyboard;
        assert_eq!(kb.len(), 3);
        assert_eq!(
            kb[2][1],
            OutButton::Url {
                label: "Site".into(),
                url: "https://example.com".into()
            }
        );
        match &kb[0][0] {
            OutButton::Callback { data, .. } => assert!(data.len() <= 64),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn help_and_custom_commands_answer_their_text() {
        let f = fixture();
        let d = decide(&f.config, ConvStatus::Bot, &cmd("help"));
        assert_eq!(d.replies[0].text, f.config.texts.help_text);
        let d = decide(&f.config, ConvStatus::Closed, &cmd("prices"));
        assert_eq!(d.replies[0].text, "See our prices");
        assert_eq!(d.status, ConvStatus::Bot);
        let d = decide(&f.config, ConvStatus::Bot, &cmd("nonsense"));
        assert_eq!(d.replies[0].text, f.config.texts.help_text);
    }

    #[test]
    fn confident_text_gets_the_rule_answer_with_its_buttons() {
        let f = fixture();
        let d = decide(
            &f.config,
            ConvStatus::Bot,
            &Inbound::Text("When are you open?".into()),
        );
        assert_eq!(d.status, ConvStatus::Bot);
        assert_eq!(d.replies[0].text, "We are open 9–18.");
        assert_eq!(d.replies[0].rule_id, Some(f.rule));
        assert_eq!(d.replies[0].keyboard.len(), 1);
        let m = d.matched.unwrap();
        assert_eq!(m.rule_id, Some(f.rule));
        assert!(m.score >= 0.5);
        assert!(d.handover.is_none());
    }

    #[test]
    fn unknown_text_hands_over() {
        let f = fixture();
        let d = decide(
            &f.config,
            ConvStatus::Bot,
            &Inbound::Text("my parcel is broken".into()),
        );
        assert_eq!(d.status, ConvStatus::Waiting);
        assert_eq!(d.handover, Some(HandoverReason::NoMatch));
        assert_eq!(d.replies[0].text, f.config.texts.handover_text);
        let m = d.matched.unwrap();
        assert_eq!(m.rule_id, None);
    }

    #[test]
    fn operator_command_and_media_hand_over() {
        let f = fixture();
        let d = decide(&f.config, ConvStatus::Bot, &cmd("operator"));
        assert_eq!(d.handover, Some(HandoverReason::Requested));
        let d = decide(
            &f.config,
            ConvStatus::Bot,
            &Inbound::Media {
                kind: "photo".into(),
                caption: None,
            },
        );
        assert_eq!(d.handover, Some(HandoverReason::Media));
    }

    #[test]
    fn with_humans_messages_go_to_the_desk_silently() {
        let f = fixture();
        for status in [ConvStatus::Waiting, ConvStatus::Assigned] {
            for inbound in [
                Inbound::Text("When are you open?".into()),
                cmd("start"),
                cmd("operator"),
            ] {
                let d = decide(&f.config, status, &inbound);
                assert_eq!(d.status, status);
                assert!(d.replies.is_empty());
                assert!(d.handover.is_none());
            }
        }
    }

    #[test]
    fn buttons_do_their_action_and_are_answered() {
        let f = fixture();
        let d = decide(&f.config, ConvStatus::Bot, &press(f.b_rule));
        assert_eq!(d.replies[0].text, "We are open 9–18.");
        assert_eq!(d.callback_answer.as_deref(), Some(""));
        assert_eq!(d.button.as_ref().unwrap().1, "Hours");
        let d = decide(&f.config, ConvStatus::Bot, &press(f.b_text));
        assert_eq!(d.replies[0].text, "Hello there");
        let d = decide(&f.config, ConvStatus::Bot, &press(f.b_sub));
        assert_eq!(d.replies[0].text, "More topics");
        assert_eq!(f.config.menus[&f.submenu].rows.len(), 0);
        let d = decide(&f.config, ConvStatus::Bot, &press(f.b_rule_in_answer));
        assert_eq!(d.replies[0].text, "Main");
        let d = decide(&f.config, ConvStatus::Bot, &press(f.b_handover));
        assert_eq!(d.status, ConvStatus::Waiting);
        assert_eq!(d.handover, Some(HandoverReason::Button));
        assert_eq!(d.callback_answer.as_deref(), Some(""));
    }

    #[test]
    fn handover_button_while_waiting_only_reassures() {
        let f = fixture();
        let d = decide(&f.config, ConvStatus::Waiting, &press(f.b_handover));
        assert_eq!(d.status, ConvStatus::Waiting);
        assert!(d.replies.is_empty());
        assert_eq!(
            d.callback_answer.as_deref(),
            Some(f.config.texts.already_waiting_text.as_str())
        );
    }

    #[test]
    fn stale_or_forged_buttons_are_answered_with_a_notice() {
        let f = fixture();
        for data in ["b:00000000000000000000000000000000", "garbage", ""] {
            let d = decide(
                &f.config,
                ConvStatus::Bot,
                &Inbound::Callback { data: data.into() },
            );
            assert!(d.replies.is_empty());
            assert_eq!(
                d.callback_answer.as_deref(),
                Some(f.config.texts.stale_button_text.as_str())
            );
        }
    }
}
