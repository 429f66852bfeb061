//! What a tenant configured for its bot, as the decision reads it: buttons, menus, rules,
//! commands, texts (with their fall-back from a user's language to the tenant's words to
//! the built-in ones), and the matcher's index.

use super::*;

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
    /// `label` in other languages.
    pub translations: Translations,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Menu {
    pub id: MenuId,
    /// The message sent with the buttons.
    pub text: String,
    pub rows: Vec<Vec<Button>>,
    /// `text` in other languages.
    pub translations: Translations,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    pub id: RuleId,
    pub title: String,
    /// How the rule is offered to users (suggestion and typical-question buttons): the
    /// admins' wording, else the first example, else the title.
    pub question: String,
    pub answer: String,
    /// The answer uses Telegram's HTML formatting.
    pub html: bool,
    pub rows: Vec<Vec<Button>>,
    /// `question` and `answer` in other languages.
    pub translations: Translations,
    /// The question as users of each language see it (see [`Rule::questions`]).
    pub questions: HashMap<Lang, String>,
}

/// A question as a button shows it: trimmed, at most 64 characters (Telegram's limit
/// for a button's text, cut with "…"), starting with a capital letter.
pub fn question_label(text: &str) -> String {
    let text = text.trim();
    let mut chars = text.chars();
    let mut label: String = chars.by_ref().take(64).collect();
    if chars.next().is_some() {
        label.pop();
        label.push('…');
    }
    let mut first = label.chars();
    match first.next() {
        Some(c) => c.to_uppercase().chain(first).collect(),
        None => label,
    }
}

impl Rule {
    /// How a rule is offered to users of each language: the admins' wording in that
    /// language; for the organization's own language (`default_lang`) the default
    /// question; for another, the rule's first example written in it (as a button
    /// label); else (no entry) the default question.
    pub fn questions(
        examples: &[String],
        translations: &Translations,
        default_lang: Lang,
    ) -> HashMap<Lang, String> {
        Lang::ALL
            .into_iter()
            .filter_map(|lang| {
                if let Some(q) = translations.get(Some(lang), "question") {
                    return Some((lang, q.to_string()));
                }
                if lang == default_lang {
                    return None;
                }
                let example = examples
                    .iter()
                    .find(|e| crate::text::detect_language(e) == Some(lang))?;
                Some((lang, question_label(example)))
            })
            .collect()
    }

    /// The question as a user of `lang` sees it.
    pub fn question_in(&self, lang: Option<Lang>) -> &str {
        lang.and_then(|l| self.questions.get(&l))
            .map_or(&self.question, String::as_str)
    }

    pub fn answer_in(&self, lang: Option<Lang>) -> &str {
        self.translations.pick(lang, "answer", &self.answer)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Command {
    pub name: String,
    pub description: String,
    pub response: String,
    /// `description` and `response` in other languages.
    pub translations: Translations,
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
    /// Sent instead of the hand-over text outside working hours.
    pub offhours_text: String,
    /// Asks for a rating after a conversation is closed (when rating is on).
    #[serde(default = "default_rating_text")]
    pub rating_text: String,
    /// The notification after a rating button is pressed.
    #[serde(default = "default_rating_thanks")]
    pub rating_thanks: String,
    /// Above the suggested rules when the bot is not sure ("Did you mean…?").
    #[serde(default = "default_suggest_text")]
    pub suggest_text: String,
    /// The button under suggestions that asks for a person instead.
    #[serde(default = "default_suggest_none")]
    pub suggest_none: String,
    /// The buttons under an answer when feedback is on, and what follows a press.
    #[serde(default = "default_feedback_yes")]
    pub feedback_yes: String,
    #[serde(default = "default_feedback_no")]
    pub feedback_no: String,
    #[serde(default = "default_feedback_thanks")]
    pub feedback_thanks: String,
    #[serde(default = "default_feedback_sorry")]
    pub feedback_sorry: String,
    #[serde(default = "default_feedback_person")]
    pub feedback_person: String,
}

pub(super) fn default_feedback_person() -> String {
    BotTexts::defaults(Lang::En).feedback_person
}

pub(super) fn default_feedback_yes() -> String {
    BotTexts::defaults(Lang::En).feedback_yes
}

pub(super) fn default_feedback_no() -> String {
    BotTexts::defaults(Lang::En).feedback_no
}

pub(super) fn default_feedback_thanks() -> String {
    BotTexts::defaults(Lang::En).feedback_thanks
}

pub(super) fn default_feedback_sorry() -> String {
    BotTexts::defaults(Lang::En).feedback_sorry
}

pub(super) fn default_suggest_text() -> String {
    BotTexts::defaults(Lang::En).suggest_text
}

pub(super) fn default_suggest_none() -> String {
    BotTexts::defaults(Lang::En).suggest_none
}

pub(super) fn default_rating_text() -> String {
    BotTexts::defaults(Lang::En).rating_text
}

pub(super) fn default_rating_thanks() -> String {
    BotTexts::defaults(Lang::En).rating_thanks
}

impl BotTexts {
    /// The texts with the fields set in `overrides` (a JSON object) replaced.
    pub fn overridden(&self, overrides: &serde_json::Value) -> Self {
        let mut merged = serde_json::to_value(self).expect("texts serialise");
        if let (Some(base), Some(over)) = (merged.as_object_mut(), overrides.as_object()) {
            for (k, v) in over {
                if base.contains_key(k) && v.as_str().is_some_and(|s| !s.trim().is_empty()) {
                    base.insert(k.clone(), v.clone());
                }
            }
        }
        serde_json::from_value(merged).unwrap_or_else(|_| self.clone())
    }

    /// The texts for users of another language than the organization's default, before
    /// any translation: where the organization wrote its own text (in its default
    /// language) that text — its own words beat built-in ones — and elsewhere the
    /// built-in text of the user's language. `own` is the default language's texts,
    /// `default_lang` that language.
    pub fn for_other_language(own: &BotTexts, default_lang: Lang, lang: Lang) -> Self {
        let own_v = serde_json::to_value(own).expect("texts serialise");
        let stock = serde_json::to_value(Self::defaults(default_lang)).expect("texts serialise");
        let mut out = serde_json::to_value(Self::defaults(lang)).expect("texts serialise");
        if let (Some(out), Some(own), Some(stock)) =
            (out.as_object_mut(), own_v.as_object(), stock.as_object())
        {
            for (k, v) in own {
                if stock.get(k) != Some(v) {
                    out.insert(k.clone(), v.clone());
                }
            }
        }
        serde_json::from_value(out).unwrap_or_else(|_| Self::defaults(lang))
    }

    pub fn defaults(lang: Lang) -> Self {
        match lang {
            Lang::En => Self {
                welcome_text: "Hello! I am the support bot. Ask your question or choose a topic below.".into(),
                help_text: "Write your question in your own words, or use the menu: /start. To talk to a person, send /operator.".into(),
                handover_text: "I am passing your question to an operator. Please wait, they will reply here.".into(),
                closing_text: "The conversation is closed. If you have another question, just write here.".into(),
                already_waiting_text: "An operator will reply soon.".into(),
                stale_button_text: "This button is no longer available.".into(),
                offhours_text: "Our operators are not at work right now. Your question is saved, and we will answer as soon as we are back.".into(),
                rating_text: "How did we do? Please rate the help you got:".into(),
                rating_thanks: "Thank you for your rating!".into(),
                suggest_text: "I am not sure I understood. Did you mean one of these?".into(),
                suggest_none: "None of these — talk to a person".into(),
                feedback_yes: "👍 Helped".into(),
                feedback_no: "👎 Didn't help".into(),
                feedback_thanks: "Thank you!".into(),
                feedback_sorry: "Sorry that did not help. Would you like to talk to a person?".into(),
                feedback_person: "Talk to a person".into(),
            },
            Lang::Ru => Self {
                welcome_text: "Здравствуйте! Я бот поддержки. Задайте вопрос или выберите тему ниже.".into(),
                help_text: "Напишите вопрос своими словами или откройте меню: /start. Чтобы поговорить с человеком, отправьте /operator.".into(),
                handover_text: "Передаю ваш вопрос оператору. Пожалуйста, подождите — ответ придёт сюда.".into(),
                closing_text: "Диалог закрыт. Если появится новый вопрос, просто напишите сюда.".into(),
                already_waiting_text: "Оператор скоро ответит.".into(),
                stale_button_text: "Эта кнопка больше не действует.".into(),
                offhours_text: "Сейчас операторы не работают. Ваш вопрос сохранён — мы ответим, как только вернёмся.".into(),
                rating_text: "Оцените, пожалуйста, насколько мы помогли:".into(),
                rating_thanks: "Спасибо за оценку!".into(),
                suggest_text: "Не уверен, что понял вас. Вы имели в виду что-то из этого?".into(),
                suggest_none: "Ничего из этого — позвать человека".into(),
                feedback_yes: "👍 Помогло".into(),
                feedback_no: "👎 Не помогло".into(),
                feedback_thanks: "Спасибо!".into(),
                feedback_sorry: "Жаль, что не помогло. Позвать человека?".into(),
                feedback_person: "Позвать человека".into(),
            },
        }
    }
}

/// Everything the bot needs to decide, built from the tenant's configuration and cached.
#[derive(Debug)]
pub struct BotConfig {
    /// Texts in the bot's default language.
    pub texts: BotTexts,
    /// Texts for users of another language (Telegram's `language_code`).
    pub translations: HashMap<Lang, BotTexts>,
    /// When operators answer; empty means always.
    pub hours: crate::hours::WorkingHours,
    pub zone: chrono_tz::Tz,
    /// Minimum matcher confidence for answering with a rule.
    pub answer_threshold: f32,
    /// Minimum confidence for suggesting rules ("Did you mean…?"); below, hand over.
    pub suggest_threshold: f32,
    /// Rules the admins marked as typical questions, most important first: offered for
    /// vague messages and under /help.
    pub featured: Vec<RuleId>,
    /// What a vague message is offered: the featured rules, then the most asked ones.
    pub popular: Vec<RuleId>,
    /// Ask "Helped? / Didn't help" under every rule's answer.
    pub feedback: bool,
    pub main_menu: Option<MenuId>,
    pub menus: HashMap<MenuId, Menu>,
    pub rules: HashMap<RuleId, Rule>,
    pub commands: HashMap<String, Command>,
    pub matcher: Arc<MatcherIndex>,
}

impl BotConfig {
    /// The texts for a user of `lang` (the default language's when not translated).
    pub fn texts_for(&self, lang: Option<Lang>) -> &BotTexts {
        lang.and_then(|l| self.translations.get(&l))
            .unwrap_or(&self.texts)
    }

    pub(super) fn button(&self, id: ButtonId) -> Option<&Button> {
        self.menus
            .values()
            .flat_map(|m| m.rows.iter().flatten())
            .chain(self.rules.values().flat_map(|r| r.rows.iter().flatten()))
            .find(|b| b.id == id)
    }
}
