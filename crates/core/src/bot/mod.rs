//! What the bot does with one inbound event: a pure function of the tenant's bot
//! configuration, the conversation's status and the event. Its [`Decision`] lists the
//! replies to send, the new status and what to record; the caller stores and delivers.

mod config;

pub use config::*;

use std::collections::HashMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::conversation::{ConvStatus, HandoverReason};
use crate::ids::{ButtonId, ConversationId, MenuId, RuleId};
use crate::matcher::{Bands, Candidate, MatchResult, MatcherIndex, Outcome};
use crate::text::Lang;
use crate::translations::Translations;

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

impl OutButton {
    pub fn label(&self) -> &str {
        match self {
            OutButton::Callback { label, .. } | OutButton::Url { label, .. } => label,
        }
    }
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
    /// Send with Telegram's HTML parse mode.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub html: bool,
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
    /// A rating (1–5) given to a closed conversation.
    pub rating: Option<(ConversationId, i16)>,
    /// The user picked among suggested rules: the rule (and its title), or none.
    pub suggestion: Option<SuggestionPick>,
    /// The user said whether a rule's answer helped.
    pub feedback: Option<(RuleId, bool)>,
}

/// A press on a "Did you mean…?" button.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SuggestionPick {
    Rule(RuleId, String),
    /// "None of these" (its label).
    None(String),
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
            rating: None,
            suggestion: None,
            feedback: None,
        }
    }
}

/// Callback data of a menu or rule button: `b:` and the id's 32 hex digits (34 bytes).
pub fn button_callback_data(id: ButtonId) -> String {
    format!("b:{}", id.0.simple())
}

/// The keyboard that asks to rate a closed conversation: ★1 … ★5.
pub fn rating_keyboard(conversation: ConversationId) -> Vec<Vec<OutButton>> {
    vec![(1..=5)
        .map(|n| OutButton::Callback {
            label: "★".repeat(n as usize),
            data: format!("r:{n}:{}", conversation.0.simple()),
        })
        .collect()]
}

fn parse_rating_callback(data: &str) -> Option<(ConversationId, i16)> {
    let rest = data.strip_prefix("r:")?;
    let (n, id) = rest.split_once(':')?;
    let n: i16 = n.parse().ok().filter(|n| (1..=5).contains(n))?;
    Some((ConversationId(uuid::Uuid::try_parse(id).ok()?), n))
}

fn parse_button_callback(data: &str) -> Option<ButtonId> {
    let hex = data.strip_prefix("b:")?;
    uuid::Uuid::try_parse(hex).ok().map(ButtonId)
}

/// Renders rows of buttons for Telegram, labelled in the user's language where the
/// organization gave one.
pub fn keyboard(rows: &[Vec<Button>], lang: Option<Lang>) -> Vec<Vec<OutButton>> {
    rows.iter()
        .map(|row| {
            row.iter()
                .map(|b| {
                    let label = b.translations.pick(lang, "label", &b.label).to_string();
                    match &b.action {
                        ButtonAction::Url { url } => OutButton::Url {
                            label,
                            url: url.clone(),
                        },
                        _ => OutButton::Callback {
                            label,
                            data: button_callback_data(b.id),
                        },
                    }
                })
                .collect::<Vec<_>>()
        })
        .filter(|row: &Vec<OutButton>| !row.is_empty())
        .collect()
}

/// The circumstances of an event that the decision depends on.
#[derive(Clone, Debug)]
pub struct Context {
    /// The user's language (from Telegram), for the bot's texts.
    pub lang: Option<Lang>,
    pub now: chrono::DateTime<chrono::Utc>,
    /// The message's sentence vector, when the matcher's semantic stage is on.
    pub vector: Option<Vec<f32>>,
}

impl Default for Context {
    fn default() -> Self {
        Self {
            lang: None,
            now: chrono::Utc::now(),
            vector: None,
        }
    }
}

struct Ctx<'a> {
    config: &'a BotConfig,
    /// The user's language: the organization's words in it where it wrote them.
    lang: Option<Lang>,
    texts: &'a BotTexts,
    now: chrono::DateTime<chrono::Utc>,
    vector: Option<&'a [f32]>,
}

/// Decides what to do with one inbound event of a conversation in `status`
/// (`Closed` means the event opens a new conversation).
pub fn decide(
    config: &BotConfig,
    status: ConvStatus,
    inbound: &Inbound,
    context: Context,
) -> Decision {
    let status = if status == ConvStatus::Closed {
        ConvStatus::Bot
    } else {
        status
    };
    let ctx = Ctx {
        config,
        lang: context.lang,
        texts: config.texts_for(context.lang),
        now: context.now,
        vector: context.vector.as_deref(),
    };
    match inbound {
        Inbound::Callback { data } => on_callback(&ctx, status, data),
        // With humans involved, whatever the user writes goes to the desk. A command
        // (/start, /help: "is anyone there?") is also answered that an operator will
        // reply — silence there looks broken; plain messages are the conversation itself.
        Inbound::Command { .. } if status.with_humans() => Decision {
            replies: vec![text_reply(&ctx.texts.already_waiting_text)],
            ..Decision::stay(status)
        },
        _ if status.with_humans() => Decision::stay(status),
        Inbound::Command { name, args } => on_command(&ctx, status, name, args),
        Inbound::Text(text) => on_text(&ctx, status, text),
        Inbound::Media { .. } => handover(&ctx, HandoverReason::Media),
    }
}

fn handover(ctx: &Ctx, reason: HandoverReason) -> Decision {
    let text = if ctx.config.hours.is_open(ctx.now, ctx.config.zone) {
        &ctx.texts.handover_text
    } else {
        &ctx.texts.offhours_text
    };
    Decision {
        status: ConvStatus::Waiting,
        replies: vec![Reply {
            text: text.clone(),
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

fn menu_reply(ctx: &Ctx, menu_id: MenuId, text_override: Option<&str>) -> Option<Reply> {
    let menu = ctx.config.menus.get(&menu_id)?;
    let text =
        text_override.unwrap_or_else(|| menu.translations.pick(ctx.lang, "text", &menu.text));
    Some(Reply {
        text: text.to_string(),
        keyboard: keyboard(&menu.rows, ctx.lang),
        ..Reply::default()
    })
}

fn rule_reply(ctx: &Ctx, rule: &Rule) -> Reply {
    let mut keyboard = keyboard(&rule.rows, ctx.lang);
    if ctx.config.feedback {
        let hex = rule.id.0.simple();
        keyboard.push(vec![
            OutButton::Callback {
                label: ctx.texts.feedback_yes.clone(),
                data: format!("f:y:{hex}"),
            },
            OutButton::Callback {
                label: ctx.texts.feedback_no.clone(),
                data: format!("f:n:{hex}"),
            },
        ]);
    }
    Reply {
        text: rule.answer_in(ctx.lang).to_string(),
        keyboard,
        rule_id: Some(rule.id),
        html: rule.html,
    }
}

/// `f:y:<rule>` / `f:n:<rule>` → (rule, helped).
fn parse_feedback_callback(data: &str) -> Option<(RuleId, bool)> {
    let rest = data.strip_prefix("f:")?;
    let (answer, hex) = rest.split_once(':')?;
    let helped = match answer {
        "y" => true,
        "n" => false,
        _ => return None,
    };
    Some((RuleId(uuid::Uuid::try_parse(hex).ok()?), helped))
}

fn on_command(ctx: &Ctx, status: ConvStatus, name: &str, args: &str) -> Decision {
    let config = ctx.config;
    let reply = match name {
        // The main menu; without one, the typical questions (the welcome text invites a
        // choice of topics, and a new organization has no menu yet).
        "start" => config
            .main_menu
            .and_then(|m| menu_reply(ctx, m, Some(&ctx.texts.welcome_text)))
            .unwrap_or_else(|| Reply {
                text: ctx.texts.welcome_text.clone(),
                keyboard: featured_keyboard(ctx),
                ..Reply::default()
            }),
        "help" => Reply {
            text: ctx.texts.help_text.clone(),
            keyboard: featured_keyboard(ctx),
            ..Reply::default()
        },
        "operator" => return handover(ctx, HandoverReason::Requested),
        other => match config.commands.get(other) {
            Some(cmd) => text_reply(cmd.translations.pick(ctx.lang, "response", &cmd.response)),
            // An unknown command may still be a question ("/delivery cost").
            None if !args.trim().is_empty() => return on_text(ctx, status, args),
            None => text_reply(&ctx.texts.help_text),
        },
    };
    Decision {
        replies: vec![reply],
        ..Decision::stay(status)
    }
}

fn on_text(ctx: &Ctx, status: ConvStatus, text: &str) -> Decision {
    let config = ctx.config;
    let result: MatchResult = config.matcher.find_with(text, ctx.vector);
    let bands = Bands {
        answer: config.answer_threshold,
        suggest: config.suggest_threshold.min(config.answer_threshold),
    };
    let mut outcome = bands.classify(&result);
    // A vague message ("help", one word) that no rule answers: offer the typical questions.
    if !matches!(outcome, Outcome::Answer(_))
        && result.terms.len() <= 1
        && !config.popular.is_empty()
    {
        outcome = Outcome::Suggest(config.popular.iter().take(5).copied().collect());
    }
    let answered = match &outcome {
        Outcome::Answer(id) => config.rules.get(id),
        _ => None,
    };
    let info = MatchInfo {
        rule_id: answered.map(|r| r.id),
        score: result.best().map_or(0.0, |c| c.score),
        threshold: bands.answer,
        candidates: result.candidates.clone(),
        terms: result.terms.clone(),
    };
    let suggested: Vec<&Rule> = match &outcome {
        Outcome::Suggest(ids) => ids.iter().filter_map(|id| config.rules.get(id)).collect(),
        _ => Vec::new(),
    };
    let mut decision = if let Some(rule) = answered {
        Decision {
            replies: vec![rule_reply(ctx, rule)],
            ..Decision::stay(status)
        }
    } else if !suggested.is_empty() {
        Decision {
            replies: vec![suggestion_reply(ctx, &suggested)],
            ..Decision::stay(status)
        }
    } else {
        handover(ctx, HandoverReason::NoMatch)
    };
    decision.matched = Some(info);
    decision
}

/// "Did you mean…?": a button per rule, and one for a person.
fn suggestion_reply(ctx: &Ctx, rules: &[&Rule]) -> Reply {
    let mut keyboard: Vec<Vec<OutButton>> = rules
        .iter()
        .map(|r| {
            vec![OutButton::Callback {
                label: r.question_in(ctx.lang).to_string(),
                data: suggestion_callback_data(r.id),
            }]
        })
        .collect();
    keyboard.push(vec![OutButton::Callback {
        label: ctx.texts.suggest_none.clone(),
        data: SUGGEST_NONE.to_string(),
    }]);
    Reply {
        text: ctx.texts.suggest_text.clone(),
        keyboard,
        ..Reply::default()
    }
}

const SUGGEST_NONE: &str = "s:-";

/// Callback data of a suggested rule: `s:` and the rule id's 32 hex digits.
pub fn suggestion_callback_data(id: RuleId) -> String {
    format!("s:{}", id.0.simple())
}

fn featured_keyboard(ctx: &Ctx) -> Vec<Vec<OutButton>> {
    let config = ctx.config;
    config
        .featured
        .iter()
        .filter_map(|id| config.rules.get(id))
        .take(8)
        .map(|r| {
            vec![OutButton::Callback {
                label: r.question_in(ctx.lang).to_string(),
                data: suggestion_callback_data(r.id),
            }]
        })
        .collect()
}

fn on_callback(ctx: &Ctx, status: ConvStatus, data: &str) -> Decision {
    let config = ctx.config;
    let stale = || Some(ctx.texts.stale_button_text.clone());
    if let Some(rating) = parse_rating_callback(data) {
        return Decision {
            callback_answer: Some(ctx.texts.rating_thanks.clone()),
            rating: Some(rating),
            ..Decision::stay(status)
        };
    }
    if let Some((rule, helped)) = parse_feedback_callback(data) {
        let replies = if helped || status.with_humans() {
            Vec::new()
        } else {
            vec![Reply {
                text: ctx.texts.feedback_sorry.clone(),
                keyboard: vec![vec![OutButton::Callback {
                    label: ctx.texts.feedback_person.clone(),
                    data: SUGGEST_NONE.to_string(),
                }]],
                ..Reply::default()
            }]
        };
        return Decision {
            replies,
            callback_answer: Some(ctx.texts.feedback_thanks.clone()),
            feedback: Some((rule, helped)),
            ..Decision::stay(status)
        };
    }
    if data == SUGGEST_NONE {
        let mut decision = if status.with_humans() {
            Decision {
                callback_answer: Some(ctx.texts.already_waiting_text.clone()),
                ..Decision::stay(status)
            }
        } else {
            handover(ctx, HandoverReason::Requested)
        };
        decision.callback_answer.get_or_insert_with(String::new);
        decision.suggestion = Some(SuggestionPick::None(ctx.texts.suggest_none.clone()));
        return decision;
    }
    if let Some(hex) = data.strip_prefix("s:") {
        let rule = uuid::Uuid::try_parse(hex)
            .ok()
            .and_then(|id| config.rules.get(&RuleId(id)));
        return match rule {
            Some(rule) => Decision {
                replies: vec![rule_reply(ctx, rule)],
                callback_answer: Some(String::new()),
                suggestion: Some(SuggestionPick::Rule(
                    rule.id,
                    rule.question_in(ctx.lang).to_string(),
                )),
                ..Decision::stay(status)
            },
            None => Decision {
                callback_answer: stale(),
                ..Decision::stay(status)
            },
        };
    }
    let Some(button) = parse_button_callback(data).and_then(|id| config.button(id)) else {
        return Decision {
            callback_answer: stale(),
            ..Decision::stay(status)
        };
    };
    let pressed = Some((button.id, button.label.clone()));
    let mut decision = match &button.action {
        ButtonAction::Handover if status.with_humans() => Decision {
            callback_answer: Some(ctx.texts.already_waiting_text.clone()),
            ..Decision::stay(status)
        },
        ButtonAction::Handover => handover(ctx, HandoverReason::Button),
        ButtonAction::Rule { rule_id } => match config.rules.get(rule_id) {
            Some(rule) => Decision {
                replies: vec![rule_reply(ctx, rule)],
                ..Decision::stay(status)
            },
            None => Decision {
                callback_answer: stale(),
                ..Decision::stay(status)
            },
        },
        ButtonAction::Text { text } => Decision {
            replies: vec![text_reply(text)],
            ..Decision::stay(status)
        },
        ButtonAction::Submenu { menu_id } => match menu_reply(ctx, *menu_id, None) {
            Some(reply) => Decision {
                replies: vec![reply],
                ..Decision::stay(status)
            },
            None => Decision {
                callback_answer: stale(),
                ..Decision::stay(status)
            },
        },
        // URL buttons never call back; treat a forged one as stale.
        ButtonAction::Url { .. } => Decision {
            callback_answer: stale(),
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
            translations: Translations::new(),
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
                translations: Translations::new(),
            },
        );
        menus.insert(
            submenu,
            Menu {
                id: submenu,
                text: "More topics".into(),
                rows: vec![],
                translations: Translations::new(),
            },
        );
        let mut rules = HashMap::new();
        rules.insert(
            rule,
            Rule {
                id: rule,
                title: "Opening hours".into(),
                question: "When are you open?".into(),
                answer: "We are open 9–18.".into(),
                html: false,
                rows: vec![vec![btn(
                    b_rule_in_answer,
                    "Back",
                    ButtonAction::Submenu { menu_id: main },
                )]],
                translations: Translations::new(),
                questions: HashMap::new(),
            },
        );
        let mut commands = HashMap::new();
        commands.insert(
            "prices".to_string(),
            Command {
                name: "prices".into(),
                description: "Prices".into(),
                response: "See our prices".into(),
                translations: Translations::new(),
            },
        );
        let matcher = MatcherIndex::build(&[RuleSpec {
            id: rule,
            title: "Opening hours".into(),
            examples: vec!["when are you open".into(), "opening hours".into()],
            keywords: vec![],
            priority: 0,
            ..RuleSpec::default()
        }]);
        Fixture {
            config: BotConfig {
                texts: BotTexts::defaults(Lang::En),
                translations: [(Lang::Ru, BotTexts::defaults(Lang::Ru))]
                    .into_iter()
                    .collect(),
                hours: crate::hours::WorkingHours::default(),
                zone: chrono_tz::Tz::UTC,
                answer_threshold: 0.5,
                suggest_threshold: 0.2,
                featured: vec![],
                feedback: false,
                popular: vec![],
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
    fn start_without_a_main_menu_offers_the_typical_questions() {
        let mut f = fixture();
        f.config.main_menu = None;
        f.config.featured = vec![f.rule];
        let d = decide(
            &f.config,
            ConvStatus::Bot,
            &cmd("start"),
            Context::default(),
        );
        assert_eq!(d.replies[0].text, f.config.texts.welcome_text);
        let help = decide(&f.config, ConvStatus::Bot, &cmd("help"), Context::default());
        assert!(
            !help.replies[0].keyboard.is_empty(),
            "the fixture has typical questions"
        );
        assert_eq!(d.replies[0].keyboard, help.replies[0].keyboard);
    }

    #[test]
    fn start_sends_welcome_with_the_main_menu() {
        let f = fixture();
        let d = decide(
            &f.config,
            ConvStatus::Bot,
            &cmd("start"),
            Context::default(),
        );
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
        let d = decide(&f.config, ConvStatus::Bot, &cmd("help"), Context::default());
        assert_eq!(d.replies[0].text, f.config.texts.help_text);
        let d = decide(
            &f.config,
            ConvStatus::Closed,
            &cmd("prices"),
            Context::default(),
        );
        assert_eq!(d.replies[0].text, "See our prices");
        assert_eq!(d.status, ConvStatus::Bot);
        let d = decide(
            &f.config,
            ConvStatus::Bot,
            &cmd("nonsense"),
            Context::default(),
        );
        assert_eq!(d.replies[0].text, f.config.texts.help_text);
    }

    #[test]
    fn confident_text_gets_the_rule_answer_with_its_buttons() {
        let f = fixture();
        let d = decide(
            &f.config,
            ConvStatus::Bot,
            &Inbound::Text("When are you open?".into()),
            Context::default(),
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
            Context::default(),
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
        let d = decide(
            &f.config,
            ConvStatus::Bot,
            &cmd("operator"),
            Context::default(),
        );
        assert_eq!(d.handover, Some(HandoverReason::Requested));
        let d = decide(
            &f.config,
            ConvStatus::Bot,
            &Inbound::Media {
                kind: "photo".into(),
                caption: None,
            },
            Context::default(),
        );
        assert_eq!(d.handover, Some(HandoverReason::Media));
    }

    #[test]
    fn with_humans_messages_go_to_the_desk_and_commands_are_told_to_wait() {
        let f = fixture();
        for status in [ConvStatus::Waiting, ConvStatus::Assigned] {
            let d = decide(
                &f.config,
                status,
                &Inbound::Text("When are you open?".into()),
                Context::default(),
            );
            assert_eq!(d.status, status);
            assert!(d.replies.is_empty(), "a message is for the operator");
            assert!(d.handover.is_none());
            for inbound in [cmd("start"), cmd("help"), cmd("operator")] {
                let d = decide(&f.config, status, &inbound, Context::default());
                assert_eq!(d.status, status);
                assert_eq!(d.replies.len(), 1, "{inbound:?}");
                assert_eq!(d.replies[0].text, f.config.texts.already_waiting_text);
                assert!(d.handover.is_none());
            }
        }
    }

    #[test]
    fn buttons_do_their_action_and_are_answered() {
        let f = fixture();
        let d = decide(
            &f.config,
            ConvStatus::Bot,
            &press(f.b_rule),
            Context::default(),
        );
        assert_eq!(d.replies[0].text, "We are open 9–18.");
        assert_eq!(d.callback_answer.as_deref(), Some(""));
        assert_eq!(d.button.as_ref().unwrap().1, "Hours");
        let d = decide(
            &f.config,
            ConvStatus::Bot,
            &press(f.b_text),
            Context::default(),
        );
        assert_eq!(d.replies[0].text, "Hello there");
        let d = decide(
            &f.config,
            ConvStatus::Bot,
            &press(f.b_sub),
            Context::default(),
        );
        assert_eq!(d.replies[0].text, "More topics");
        assert_eq!(f.config.menus[&f.submenu].rows.len(), 0);
        let d = decide(
            &f.config,
            ConvStatus::Bot,
            &press(f.b_rule_in_answer),
            Context::default(),
        );
        assert_eq!(d.replies[0].text, "Main");
        let d = decide(
            &f.config,
            ConvStatus::Bot,
            &press(f.b_handover),
            Context::default(),
        );
        assert_eq!(d.status, ConvStatus::Waiting);
        assert_eq!(d.handover, Some(HandoverReason::Button));
        assert_eq!(d.callback_answer.as_deref(), Some(""));
    }

    #[test]
    fn handover_button_while_waiting_only_reassures() {
        let f = fixture();
        let d = decide(
            &f.config,
            ConvStatus::Waiting,
            &press(f.b_handover),
            Context::default(),
        );
        assert_eq!(d.status, ConvStatus::Waiting);
        assert!(d.replies.is_empty());
        assert_eq!(
            d.callback_answer.as_deref(),
            Some(f.config.texts.already_waiting_text.as_str())
        );
    }

    #[test]
    fn texts_follow_the_users_language() {
        let f = fixture();
        let ru = Context {
            lang: Some(Lang::Ru),
            ..Context::default()
        };
        let d = decide(&f.config, ConvStatus::Bot, &cmd("help"), ru);
        assert_eq!(d.replies[0].text, BotTexts::defaults(Lang::Ru).help_text);
        let d = decide(&f.config, ConvStatus::Bot, &cmd("help"), Context::default());
        assert_eq!(d.replies[0].text, f.config.texts.help_text);
    }

    #[test]
    fn the_organizations_words_follow_the_users_language_where_written() {
        let mut f = fixture();
        let ru = || Context {
            lang: Some(Lang::Ru),
            ..Context::default()
        };
        let rule = f.config.rules.get_mut(&f.rule).unwrap();
        rule.translations
            .set(Lang::Ru, "answer", "Мы работаем с 9 до 18.");
        rule.questions = Rule::questions(
            &[
                "when are you open".into(),
                "во сколько вы открываетесь".into(),
            ],
            &rule.translations,
            Lang::En,
        );
        let main = f.config.main_menu.unwrap();
        let menu = f.config.menus.get_mut(&main).unwrap();
        menu.rows[0][0]
            .translations
            .set(Lang::Ru, "label", "Часы работы");
        f.config
            .menus
            .get_mut(&f.submenu)
            .unwrap()
            .translations
            .set(Lang::Ru, "text", "Ещё темы");
        f.config
            .commands
            .get_mut("prices")
            .unwrap()
            .translations
            .set(Lang::Ru, "response", "Наши цены");
        f.config.featured = vec![f.rule];

        let d = decide(&f.config, ConvStatus::Bot, &cmd("start"), ru());
        let labels: Vec<&str> = d.replies[0].keyboard[0]
            .iter()
            .map(OutButton::label)
            .collect();
        assert_eq!(
            labels,
            ["Часы работы", "Hi"],
            "untranslated labels stay the organization's"
        );
        let d = decide(&f.config, ConvStatus::Bot, &press(f.b_rule), ru());
        assert_eq!(d.replies[0].text, "Мы работаем с 9 до 18.");
        let d = decide(&f.config, ConvStatus::Bot, &press(f.b_sub), ru());
        assert_eq!(d.replies[0].text, "Ещё темы");
        let d = decide(&f.config, ConvStatus::Bot, &cmd("prices"), ru());
        assert_eq!(d.replies[0].text, "Наши цены");
        // "Did you mean…" and typical questions: the Russian example, not the English wording.
        let d = decide(&f.config, ConvStatus::Bot, &cmd("help"), ru());
        assert_eq!(
            d.replies[0].keyboard[0][0].label(),
            "Во сколько вы открываетесь"
        );

        // Users of the default language, or of none, get the default words.
        for ctx in [
            Context {
                lang: Some(Lang::En),
                ..Context::default()
            },
            Context::default(),
        ] {
            let d = decide(&f.config, ConvStatus::Bot, &press(f.b_rule), ctx.clone());
            assert_eq!(d.replies[0].text, "We are open 9–18.");
            let d = decide(&f.config, ConvStatus::Bot, &cmd("help"), ctx);
            assert_eq!(d.replies[0].keyboard[0][0].label(), "When are you open?");
        }
    }

    #[test]
    fn a_rules_own_question_in_a_language_beats_its_examples() {
        let mut t = Translations::new();
        let examples = ["сколько стоит доставка".to_string()];
        let q = Rule::questions(&examples, &t, Lang::En);
        assert_eq!(q[&Lang::Ru], "Сколько стоит доставка");
        assert!(
            !q.contains_key(&Lang::En),
            "the default question serves English"
        );
        // The organization's own language keeps its question, whatever its script.
        let ru_org = Rule::questions(&["iPhone 15 ремонт".into()], &Translations::new(), Lang::Ru);
        assert!(!ru_org.contains_key(&Lang::Ru), "{ru_org:?}");
        t.set(Lang::Ru, "question", "Сколько стоит доставка?");
        let q = Rule::questions(&examples, &t, Lang::En);
        assert_eq!(q[&Lang::Ru], "Сколько стоит доставка?");
    }

    #[test]
    fn outside_working_hours_the_handover_says_so() {
        let mut f = fixture();
        f.config.hours.days[0] = vec![("09:00".into(), "18:00".into())];
        // Monday 2026-11-23: 20:00 is closed, 10:00 is open.
        let at = |t: &str| Context {
            lang: None,
            now: chrono::DateTime::parse_from_rfc3339(t)
                .unwrap()
                .with_timezone(&chrono::Utc),
            vector: None,
        };
        let d = decide(
            &f.config,
            ConvStatus::Bot,
            &cmd("operator"),
            at("2026-11-23T20:00:00Z"),
        );
        assert_eq!(d.status, ConvStatus::Waiting);
        assert_eq!(d.replies[0].text, f.config.texts.offhours_text);
        let d = decide(
            &f.config,
            ConvStatus::Bot,
            &cmd("operator"),
            at("2026-11-23T10:00:00Z"),
        );
        assert_eq!(d.replies[0].text, f.config.texts.handover_text);
    }

    #[test]
    fn the_organizations_own_words_beat_built_in_ones() {
        let mut own = BotTexts::defaults(Lang::En);
        own.welcome_text = "Welcome to Acme!".into();
        let ru = BotTexts::for_other_language(&own, Lang::En, Lang::Ru);
        // Written by the organization (in English): kept for Russian users…
        assert_eq!(ru.welcome_text, "Welcome to Acme!");
        // …left as built in: the built-in Russian text.
        assert_eq!(ru.help_text, BotTexts::defaults(Lang::Ru).help_text);
    }

    #[test]
    fn translations_override_only_what_they_set() {
        let base = BotTexts::defaults(Lang::En);
        let t = base.overridden(
            &serde_json::json!({"welcome_text": "Hi!", "help_text": "  ", "nonsense": "x"}),
        );
        assert_eq!(t.welcome_text, "Hi!");
        assert_eq!(t.help_text, base.help_text);
    }

    #[test]
    fn rating_buttons_rate_the_conversation_they_name() {
        let f = fixture();
        let conv = ConversationId::new();
        let kb = rating_keyboard(conv);
        assert_eq!(kb[0].len(), 5);
        let OutButton::Callback { data, .. } = &kb[0][3] else {
            panic!()
        };
        assert!(data.len() <= 64);
        let d = decide(
            &f.config,
            ConvStatus::Closed,
            &Inbound::Callback { data: data.clone() },
            Context::default(),
        );
        assert_eq!(d.rating, Some((conv, 4)));
        assert!(d.replies.is_empty());
        assert_eq!(
            d.callback_answer.as_deref(),
            Some(f.config.texts.rating_thanks.as_str())
        );
        for bad in ["r:9:00000000000000000000000000000000", "r:3:xyz", "r:3"] {
            let d = decide(
                &f.config,
                ConvStatus::Bot,
                &Inbound::Callback { data: bad.into() },
                Context::default(),
            );
            assert!(d.rating.is_none(), "{bad}");
        }
    }

    #[test]
    fn stale_or_forged_buttons_are_answered_with_a_notice() {
        let f = fixture();
        for data in ["b:00000000000000000000000000000000", "garbage", ""] {
            let d = decide(
                &f.config,
                ConvStatus::Bot,
                &Inbound::Callback { data: data.into() },
                Context::default(),
            );
            assert!(d.replies.is_empty());
            assert_eq!(
                d.callback_answer.as_deref(),
                Some(f.config.texts.stale_button_text.as_str())
            );
        }
    }
}
