//! Turning a raw Telegram update into what the bot acts on.

use serde::Deserialize;
use serde_json::Value;
use switchboard_core::bot::Inbound;
use switchboard_db::end_users::TelegramUser;
use teloxide::types::{
    CallbackQuery, ChatKind, MaybeInaccessibleMessage, MediaKind, Message, MessageEntityKind,
    MessageKind, Update, UpdateKind, User,
};

/// The update types Switchboard asks Telegram for.
pub const ALLOWED_UPDATES: &[&str] = &[
    "message",
    "edited_message",
    "callback_query",
    "my_chat_member",
];

#[derive(Debug)]
pub struct ParsedUpdate {
    pub update_id: i64,
    pub action: UpdateAction,
}

#[derive(Debug)]
pub enum UpdateAction {
    /// A private message or button press for the bot.
    Act(Act),
    /// The user blocked (`true`) or unblocked the bot.
    Membership { user: TelegramUser, blocked: bool },
    /// Nothing to do (group chats, edits, update types we do not handle): stored and acknowledged.
    Ignore { reason: String },
}

#[derive(Debug)]
pub struct Act {
    pub user: TelegramUser,
    pub inbound: Inbound,
    /// Message kind for the log: text, command, callback, photo, …
    pub kind: String,
    /// What to show in the desk and the log.
    pub text: String,
    pub telegram_message_id: Option<i64>,
    pub callback_query_id: Option<String>,
    /// Media descriptors (file ids, sizes) to keep on the message row.
    pub payload: Option<Value>,
}

#[derive(Debug, thiserror::Error)]
#[error("not a Telegram update: {0}")]
pub struct NotAnUpdate(String);

/// Parses a webhook body (already JSON).
pub fn parse(raw: &Value) -> Result<ParsedUpdate, NotAnUpdate> {
    let update = Update::deserialize(raw).map_err(|e| NotAnUpdate(e.to_string()))?;
    let update_id = i64::from(update.id.0);
    let action = match update.kind {
        UpdateKind::Message(m) => on_message(&m, raw.get("message")),
        UpdateKind::CallbackQuery(q) => on_callback(&q),
        UpdateKind::MyChatMember(m) => match (&m.chat.kind, m.new_chat_member.kind.is_banned()) {
            (ChatKind::Private(_), blocked) => UpdateAction::Membership {
                user: telegram_user(&m.from, m.chat.id.0),
                blocked: blocked || m.new_chat_member.kind.is_left(),
            },
            _ => ignore("membership change outside a private chat"),
        },
        UpdateKind::EditedMessage(_) => ignore("edited message"),
        UpdateKind::Error(_) => ignore("update type not understood"),
        _ => ignore("update type not handled"),
    };
    Ok(ParsedUpdate { update_id, action })
}

fn ignore(reason: &str) -> UpdateAction {
    UpdateAction::Ignore {
        reason: reason.to_string(),
    }
}

fn telegram_user(u: &User, chat_id: i64) -> TelegramUser {
    TelegramUser {
        telegram_user_id: u.id.0 as i64,
        chat_id,
        username: u.username.clone(),
        first_name: u.first_name.clone(),
        last_name: u.last_name.clone(),
        language_code: u.language_code.clone(),
    }
}

fn on_message(m: &Message, raw: Option<&Value>) -> UpdateAction {
    if !m.chat.is_private() {
        return ignore("message outside a private chat");
    }
    let Some(from) = &m.from else {
        return ignore("message without a sender");
    };
    if from.is_bot {
        return ignore("message from a bot");
    }
    let user = telegram_user(from, m.chat.id.0);
    let message_id = Some(i64::from(m.id.0));
    let MessageKind::Common(common) = &m.kind else {
        return ignore("service message");
    };
    let (inbound, kind, text) = match &common.media_kind {
        MediaKind::Text(t) => match command(&t.text, &t.entities) {
            Some((name, args)) => (
                Inbound::Command { name, args },
                "command".to_string(),
                t.text.clone(),
            ),
            None => (
                Inbound::Text(t.text.clone()),
                "text".to_string(),
                t.text.clone(),
            ),
        },
        other => {
            let kind = media_name(other).to_string();
            let caption = m.caption().map(String::from);
            let text = caption.clone().unwrap_or_default();
            (
                Inbound::Media {
                    kind: kind.clone(),
                    caption,
                },
                kind,
                text,
            )
        }
    };
    // Keep the media part of the raw message (file ids, sizes) for the desk.
    let payload = raw.and_then(|r| {
        let mut media = serde_json::Map::new();
        for key in [
            "photo",
            "document",
            "voice",
            "audio",
            "video",
            "video_note",
            "sticker",
            "animation",
            "location",
            "contact",
        ] {
            if let Some(v) = r.get(key) {
                media.insert(key.to_string(), v.clone());
            }
        }
        (!media.is_empty()).then_some(Value::Object(media))
    });
    UpdateAction::Act(Act {
        user,
        inbound,
        kind,
        text,
        telegram_message_id: message_id,
        callback_query_id: None,
        payload,
    })
}

/// `/name@bot args` → (`name`, `args`) when the text starts with a bot command.
fn command(text: &str, entities: &[teloxide::types::MessageEntity]) -> Option<(String, String)> {
    let first = entities.first()?;
    if first.kind != MessageEntityKind::BotCommand || first.offset != 0 {
        return None;
    }
    let word = text.split_whitespace().next()?;
    let name = word.strip_prefix('/')?;
    let name = name.split('@').next().unwrap_or(name).to_lowercase();
    let args = text[word.len()..].trim().to_string();
    Some((name, args))
}

fn media_name(kind: &MediaKind) -> &'static str {
    match kind {
        MediaKind::Photo(_) => "photo",
        MediaKind::Document(_) => "document",
        MediaKind::Voice(_) => "voice",
        MediaKind::Audio(_) => "audio",
        MediaKind::Video(_) => "video",
        MediaKind::VideoNote(_) => "video_note",
        MediaKind::Sticker(_) => "sticker",
        MediaKind::Animation(_) => "animation",
        MediaKind::Location(_) | MediaKind::Venue(_) => "location",
        MediaKind::Contact(_) => "contact",
        MediaKind::Poll(_) => "poll",
        _ => "other",
    }
}

fn on_callback(q: &CallbackQuery) -> UpdateAction {
    let chat_id = match &q.message {
        Some(MaybeInaccessibleMessage::Regular(m)) => m.chat.id.0,
        Some(MaybeInaccessibleMessage::Inaccessible(m)) => m.chat.id.0,
        None => q.from.id.0 as i64,
    };
    if chat_id != q.from.id.0 as i64 {
        return ignore("button press outside a private chat");
    }
    let message_id = match &q.message {
        Some(MaybeInaccessibleMessage::Regular(m)) => Some(i64::from(m.id.0)),
        Some(MaybeInaccessibleMessage::Inaccessible(m)) => Some(i64::from(m.message_id.0)),
        None => None,
    };
    let data = q.data.clone().unwrap_or_default();
    UpdateAction::Act(Act {
        user: telegram_user(&q.from, chat_id),
        inbound: Inbound::Callback { data: data.clone() },
        kind: "callback".into(),
        text: data,
        telegram_message_id: message_id,
        callback_query_id: Some(q.id.0.clone()),
        payload: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn msg(text: &str, entities: Value) -> Value {
        json!({"update_id": 10, "message": {
            "message_id": 5, "date": 1700000000,
            "from": {"id": 42, "is_bot": false, "first_name": "Ann", "username": "ann", "language_code": "ru"},
            "chat": {"id": 42, "type": "private", "first_name": "Ann"},
            "text": text, "entities": entities}})
    }

    #[test]
    fn text_messages_become_text() {
        let p = parse(&msg("Где мой заказ?", json!([]))).unwrap();
        assert_eq!(p.update_id, 10);
        let UpdateAction::Act(a) = p.action else {
            panic!()
        };
        assert_eq!(a.inbound, Inbound::Text("Где мой заказ?".into()));
        assert_eq!(a.user.telegram_user_id, 42);
        assert_eq!(a.user.language_code.as_deref(), Some("ru"));
        assert_eq!(a.telegram_message_id, Some(5));
    }

    #[test]
    fn commands_are_split_and_addressed_names_stripped() {
        let p = parse(&msg(
            "/Start@ShopBot promo",
            json!([{"type": "bot_command", "offset": 0, "length": 14}]),
        ))
        .unwrap();
        let UpdateAction::Act(a) = p.action else {
            panic!()
        };
        assert_eq!(
            a.inbound,
            Inbound::Command {
                name: "start".into(),
                args: "promo".into()
            }
        );
        assert_eq!(a.kind, "command");
    }

    #[test]
    fn slash_without_entity_is_text() {
        let p = parse(&msg("/ not a command", json!([]))).unwrap();
        let UpdateAction::Act(a) = p.action else {
            panic!()
        };
        assert!(matches!(a.inbound, Inbound::Text(_)));
    }

    #[test]
    fn callbacks_carry_data_and_query_id() {
        let raw = json!({"update_id": 11, "callback_query": {
            "id": "cq1", "chat_instance": "x", "data": "b:abc",
            "from": {"id": 42, "is_bot": false, "first_name": "Ann"},
            "message": {"message_id": 7, "date": 1700000000,
                "chat": {"id": 42, "type": "private", "first_name": "Ann"}, "text": "menu"}}});
        let UpdateAction::Act(a) = parse(&raw).unwrap().action else {
            panic!()
        };
        assert_eq!(
            a.inbound,
            Inbound::Callback {
                data: "b:abc".into()
            }
        );
        assert_eq!(a.callback_query_id.as_deref(), Some("cq1"));
        assert_eq!(a.telegram_message_id, Some(7));
    }

    #[test]
    fn photos_are_media_with_payload() {
        let raw = json!({"update_id": 12, "message": {
            "message_id": 8, "date": 1700000000,
            "from": {"id": 42, "is_bot": false, "first_name": "Ann"},
            "chat": {"id": 42, "type": "private", "first_name": "Ann"},
            "photo": [{"file_id": "f", "file_unique_id": "u", "width": 1, "height": 1}],
            "caption": "broken screen"}});
        let UpdateAction::Act(a) = parse(&raw).unwrap().action else {
            panic!()
        };
        assert_eq!(
            a.inbound,
            Inbound::Media {
                kind: "photo".into(),
                caption: Some("broken screen".into())
            }
        );
        assert!(a.payload.unwrap().get("photo").is_some());
    }

    #[test]
    fn group_messages_and_edits_are_ignored() {
        let raw = json!({"update_id": 13, "message": {
            "message_id": 9, "date": 1700000000,
            "from": {"id": 42, "is_bot": false, "first_name": "Ann"},
            "chat": {"id": -100, "type": "group", "title": "G"}, "text": "hi"}});
        assert!(matches!(
            parse(&raw).unwrap().action,
            UpdateAction::Ignore { .. }
        ));
        let raw = json!({"update_id": 14, "edited_message": {
            "message_id": 9, "date": 1700000000, "edit_date": 1700000001,
            "from": {"id": 42, "is_bot": false, "first_name": "Ann"},
            "chat": {"id": 42, "type": "private", "first_name": "Ann"}, "text": "hi"}});
        assert!(matches!(
            parse(&raw).unwrap().action,
            UpdateAction::Ignore { .. }
        ));
    }

    #[test]
    fn blocking_the_bot_is_a_membership_change() {
        let raw = json!({"update_id": 15, "my_chat_member": {
            "chat": {"id": 42, "type": "private", "first_name": "Ann"},
            "from": {"id": 42, "is_bot": false, "first_name": "Ann"},
            "date": 1700000000,
            "old_chat_member": {"user": {"id": 1, "is_bot": true, "first_name": "B"}, "status": "member"},
            "new_chat_member": {"user": {"id": 1, "is_bot": true, "first_name": "B"}, "status": "kicked", "until_date": 0}}});
        match parse(&raw).unwrap().action {
            UpdateAction::Membership { blocked, user } => {
                assert!(blocked);
                assert_eq!(user.chat_id, 42);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn garbage_is_not_an_update() {
        assert!(parse(&json!({"hello": 1})).is_err());
        assert!(parse(&json!([1, 2])).is_err());
    }
}
