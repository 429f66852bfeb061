//! The log in words: each event, read back as its typed [`Event`], becomes a sentence in
//! the reader's language ("Anna closed the conversation with Ivan: refunded") from the
//! catalogue's `event.<kind>` (or `event.<kind>.<variant>`), with the payload's values as
//! its parameters. An entry whose payload does not fit its kind keeps its raw form.

use serde_json::Value;
use switchboard_core::Event;
use switchboard_db::log::LogEntry;

use crate::i18n::{Catalogs, UiLang};

/// Which wording of a kind fits this event, when a kind has several.
fn variant(event: &Event) -> Option<&'static str> {
    match event {
        Event::ConversationClosed { resolution } => Some(
            if resolution.as_deref().is_some_and(|r| !r.trim().is_empty()) {
                "resolved"
            } else {
                "plain"
            },
        ),
        Event::AnswerFeedback { helped, .. } => Some(if *helped { "yes" } else { "no" }),
        Event::BotSendRateChanged { to, .. } => Some(if to.is_some() { "set" } else { "default" }),
        _ => None,
    }
}

/// A payload value as a sentence shows it.
fn shown(catalogs: &Catalogs, lang: UiLang, field: &str, v: &Value) -> String {
    match v {
        Value::String(s) => {
            // Words the catalogue knows better: roles, hand-over reasons.
            let key = match field {
                "role" | "from" | "to" => format!("role.{s}"),
                "reason" => format!("handover.{s}"),
                _ => String::new(),
            };
            if !key.is_empty() && catalogs.has(lang, &key) {
                catalogs.t(lang, &key, &[])
            } else {
                s.clone()
            }
        }
        Value::Array(items) => items
            .iter()
            .map(|i| shown(catalogs, lang, field, i))
            .collect::<Vec<_>>()
            .join(", "),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// The badge of a kind: what it is about (`conversation.closed` → "Conversation"), or
/// the kind itself when the catalogue has no word for it.
pub fn area(catalogs: &Catalogs, lang: UiLang, kind: &str) -> String {
    let whole = format!("logs.kinds.{kind}");
    if catalogs.has(lang, &whole) {
        return catalogs.t(lang, &whole, &[]);
    }
    let key = format!("logs.area.{}", kind.split('.').next().unwrap_or(kind));
    if catalogs.has(lang, &key) {
        catalogs.t(lang, &key, &[])
    } else {
        kind.to_string()
    }
}

/// The entry as a sentence, or `None` (a message, or a kind without wording).
pub fn sentence(catalogs: &Catalogs, lang: UiLang, e: &LogEntry) -> Option<String> {
    if e.source == "m" {
        return None;
    }
    let (key, data) = match Event::from_stored(&e.kind, &e.data) {
        Some(event) => {
            let key = match variant(&event) {
                Some(v) => format!("event.{}.{v}", e.kind),
                None => format!("event.{}", e.kind),
            };
            (key, event.data())
        }
        // Sign-ins and the like (platform events) are not tenant events; their payload
        // is shown as it is.
        None if e.source == "p" => (format!("event.{}", e.kind), e.data.clone()),
        None => return None,
    };
    if !catalogs.has(lang, &key) {
        return None;
    }
    let who = e
        .actor_name
        .clone()
        .filter(|n| !n.trim().is_empty())
        .unwrap_or_else(|| catalogs.t(lang, &format!("logs.actor.{}", e.actor_type), &[]));
    let user = e
        .end_user_name
        .clone()
        .filter(|n| !n.trim().is_empty())
        .unwrap_or_else(|| "—".into());
    let mut args: Vec<(&str, String)> = vec![("who", who), ("user", user)];
    if let Value::Object(map) = &data {
        for (k, v) in map {
            args.push((k.as_str(), shown(catalogs, lang, k, v)));
            if let Value::Array(items) = v {
                // Lists also by their size ("switched on 3 rules").
                args.push(("count", items.len().to_string()));
            }
        }
    }
    Some(catalogs.t(lang, &key, &args))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn entry(kind: &str, data: Value) -> LogEntry {
        LogEntry {
            source: "e".into(),
            id: 1,
            created_at: chrono::Utc::now(),
            kind: kind.into(),
            actor_type: "user".into(),
            actor_id: None,
            actor_name: Some("Anna".into()),
            conversation_id: None,
            end_user_id: None,
            end_user_name: Some("Ivan".into()),
            text: String::new(),
            rule_id: None,
            rule_title: None,
            score: None,
            delivery_status: None,
            delivery_error: None,
            data,
            test: false,
        }
    }

    #[test]
    fn events_read_as_sentences_in_both_languages() {
        let c = Catalogs::embedded();
        let closed = entry("conversation.closed", json!({"resolution": "refunded"}));
        assert_eq!(
            sentence(&c, UiLang::En, &closed).unwrap(),
            "Anna closed the conversation with Ivan: refunded"
        );
        assert_eq!(
            sentence(&c, UiLang::Ru, &closed).unwrap(),
            "Anna: разговор с Ivan закрыт — refunded"
        );
        let plain = entry("conversation.closed", json!({"resolution": null}));
        assert_eq!(
            sentence(&c, UiLang::En, &plain).unwrap(),
            "Anna closed the conversation with Ivan"
        );
        let role = entry(
            "member.role_changed",
            json!({"user_id": uuid::Uuid::nil(), "email": "op@acme.test", "from": "operator", "to": "admin"}),
        );
        assert_eq!(
            sentence(&c, UiLang::Ru, &role).unwrap(),
            "Anna: роль op@acme.test изменена — Оператор → Администратор"
        );
    }

    #[test]
    fn every_event_kind_has_words_in_both_languages() {
        let c = Catalogs::embedded();
        for kind in switchboard_core::EventKind::ALL {
            let with_variants = [
                format!("event.{kind}"),
                format!("event.{kind}.plain"),
                format!("event.{kind}.yes"),
                format!("event.{kind}.set"),
            ];
            for lang in [UiLang::En, UiLang::Ru] {
                assert!(
                    with_variants.iter().any(|k| c.has(lang, k)),
                    "no words for {kind} in {lang:?}"
                );
            }
        }
    }

    #[test]
    fn a_payload_of_another_shape_is_not_put_into_words() {
        let c = Catalogs::embedded();
        let odd = entry("rule.created", json!({"rule_id": "not an id"}));
        assert_eq!(sentence(&c, UiLang::En, &odd), None);
    }
}
