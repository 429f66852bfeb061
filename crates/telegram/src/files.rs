//! Files in conversations: what users send (downloaded through the bot on demand, for the
//! desk) and what operators send (stored with the message, uploaded by delivery).

use serde_json::json;
use switchboard_core::bot::Reply;
use switchboard_core::{ConversationId, MessageId, TenantId};
use switchboard_db::messages::{self, Sender};
use switchboard_db::{attachments, conversations};
use teloxide::payloads::GetFile;

use crate::client::TgError;
use crate::engine::outbound_rows;
use crate::operator::{Operator, OperatorError};
use crate::Telegram;

/// Telegram lets bots download files up to 20 MB.
pub const MAX_DOWNLOAD: usize = 20 * 1024 * 1024;
/// What operators may upload (Telegram accepts 50 MB; the desk keeps a copy).
pub const MAX_UPLOAD: usize = 20 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("no such file")]
    NotFound,
    #[error("the bot is not connected")]
    NoBot,
    #[error(transparent)]
    Db(#[from] switchboard_db::DbError),
    #[error(transparent)]
    Telegram(#[from] TgError),
}

/// A file of a conversation, ready to serve.
pub struct StoredFile {
    pub bytes: Vec<u8>,
    pub mime_type: String,
    pub file_name: String,
}

/// An operator's file.
pub struct Upload {
    pub file_name: String,
    pub content_type: String,
    pub bytes: Vec<u8>,
}

impl Upload {
    /// Images go as photos (Telegram shows them inline), everything else as documents.
    pub fn kind(&self) -> &'static str {
        if matches!(
            self.content_type.as_str(),
            "image/jpeg" | "image/png" | "image/webp"
        ) {
            "photo"
        } else {
            "document"
        }
    }
}

impl Telegram {
    /// Fetches a file a user sent, through the conversation's bot.
    pub async fn download_file(
        &self,
        tenant: TenantId,
        bot: switchboard_core::BotId,
        file_id: &str,
    ) -> Result<Vec<u8>, FileError> {
        let entry = self
            .caches
            .bot(tenant, bot)
            .await
            .map_err(|_| FileError::NoBot)?
            .filter(|b| !b.sandbox)
            .ok_or(FileError::NoBot)?;
        let file = self
            .api
            .call(
                entry.token(),
                &GetFile::new(teloxide::types::FileId(file_id.to_string())),
            )
            .await?;
        Ok(self
            .api
            .download(entry.token(), &file.path, MAX_DOWNLOAD)
            .await?)
    }

    /// The file of a message: what the user sent (fetched through the bot) or what an
    /// operator attached (from the database).
    pub async fn message_file(
        &self,
        tenant: TenantId,
        message: MessageId,
    ) -> Result<StoredFile, FileError> {
        let m = messages::get(&self.pool, tenant, message)
            .await
            .map_err(|e| match e {
                switchboard_db::DbError::NotFound => FileError::NotFound,
                e => FileError::Db(e),
            })?;
        if m.direction == switchboard_core::Direction::Out {
            return match attachments::get(&self.pool, tenant, m.id).await {
                Ok(a) => Ok(StoredFile {
                    bytes: a.data,
                    mime_type: a.content_type,
                    file_name: a.file_name,
                }),
                Err(switchboard_db::DbError::NotFound) => Err(FileError::NotFound),
                Err(e) => Err(e.into()),
            };
        }
        let f = m
            .payload
            .as_ref()
            .and_then(|p| media_file(&m.kind, p))
            .ok_or(FileError::NotFound)?;
        let conv = conversations::get(&self.pool, tenant, m.conversation_id).await?;
        let bytes = self.download_file(tenant, conv.bot_id, &f.file_id).await?;
        let file_name = f.file_name.clone().unwrap_or_else(|| {
            let ext = match f.mime_type.as_str() {
                "image/jpeg" => "jpg",
                "image/webp" => "webp",
                "audio/ogg" => "ogg",
                "video/mp4" => "mp4",
                _ => "bin",
            };
            format!("{}-{}.{ext}", m.kind, m.id.0)
        });
        Ok(StoredFile {
            bytes,
            mime_type: f.mime_type,
            file_name,
        })
    }

    /// Stores an operator's file (with an optional caption) and queues its delivery.
    pub async fn reply_with_file(
        &self,
        tenant: TenantId,
        id: ConversationId,
        op: Operator,
        caption: &str,
        upload: Upload,
    ) -> Result<MessageId, OperatorError> {
        let (mut tx, conv) = self.begin_reply(tenant, id, op).await?;
        let mut rows = outbound_rows(
            id,
            conv.end_user_id,
            Sender::Operator(op.user),
            &[Reply {
                text: caption.chars().take(1024).collect(),
                ..Reply::default()
            }],
        );
        rows.truncate(1);
        let row = &mut rows[0];
        row.kind = upload.kind();
        row.payload = Some(
            json!({"file": {"name": upload.file_name, "size": upload.bytes.len(), "content_type": upload.content_type}}),
        );
        let ids = messages::insert_outbound(&mut tx, tenant, &rows).await?;
        attachments::insert(
            &mut *tx,
            tenant,
            ids[0],
            &upload.file_name,
            &upload.content_type,
            &upload.bytes,
        )
        .await?;
        self.finish_reply(tx, tenant, &conv).await?;
        Ok(ids[0])
    }
}

/// A file a user sent, as the desk describes it (from the message's stored payload).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct MediaFile {
    pub file_id: String,
    pub file_name: Option<String>,
    pub mime_type: String,
    pub size: Option<i64>,
    /// Seconds, for voice, audio and video.
    pub duration: Option<i64>,
    /// Show as an image, play as audio or video, or offer as a download.
    pub display: &'static str,
    /// For stickers: the emoji it stands for.
    pub emoji: Option<String>,
}

/// The downloadable file of a user's media message, if it has one.
pub fn media_file(kind: &str, payload: &serde_json::Value) -> Option<MediaFile> {
    use serde_json::Value;
    let obj = payload.get(kind)?;
    // A photo comes in several sizes, smallest first: take the largest Telegram lets a
    // bot download.
    let item: &Value = if kind == "photo" {
        obj.as_array()?
            .iter()
            .rev()
            .find(|p| {
                p.get("file_size")
                    .and_then(Value::as_i64)
                    .is_none_or(|s| s as usize <= MAX_DOWNLOAD)
            })
            .or_else(|| obj.as_array()?.first())?
    } else {
        obj
    };
    let str_of = |k: &str| item.get(k).and_then(Value::as_str).map(String::from);
    let file_id = str_of("file_id")?;
    let (default_mime, display) = match kind {
        "photo" => ("image/jpeg", "image"),
        "voice" => ("audio/ogg", "audio"),
        "audio" => ("audio/mpeg", "audio"),
        "video" | "video_note" | "animation" => ("video/mp4", "video"),
        "sticker" => {
            if item.get("is_animated").and_then(Value::as_bool) == Some(true) {
                ("application/x-tgsticker", "file")
            } else if item.get("is_video").and_then(Value::as_bool) == Some(true) {
                ("video/webm", "video")
            } else {
                ("image/webp", "image")
            }
        }
        "document" => ("application/octet-stream", "file"),
        _ => return None,
    };
    let mime_type = str_of("mime_type").unwrap_or_else(|| default_mime.to_string());
    let display = if kind == "document" && is_inline_image(&mime_type) {
        "image"
    } else {
        display
    };
    Some(MediaFile {
        file_id,
        file_name: str_of("file_name"),
        size: item.get("file_size").and_then(Value::as_i64),
        duration: item.get("duration").and_then(Value::as_i64),
        emoji: str_of("emoji"),
        mime_type,
        display,
    })
}

/// Types a browser may show in place (everything else is served as a download).
pub fn is_inline_image(mime: &str) -> bool {
    matches!(
        mime,
        "image/jpeg" | "image/png" | "image/webp" | "image/gif"
    )
}

/// Types the desk serves for display in the page rather than as a download.
pub fn is_inline(mime: &str) -> bool {
    is_inline_image(mime)
        || matches!(
            mime,
            "audio/ogg" | "audio/mpeg" | "audio/mp4" | "video/mp4" | "video/webm"
        )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_largest_downloadable_photo_size_is_taken() {
        let p = json!({"photo": [
            {"file_id": "small", "file_size": 1000, "width": 90, "height": 90},
            {"file_id": "big", "file_size": 200000, "width": 1280, "height": 1280},
            {"file_id": "huge", "file_size": 30000000, "width": 5000, "height": 5000},
        ]});
        let f = media_file("photo", &p).unwrap();
        assert_eq!(f.file_id, "big");
        assert_eq!(f.display, "image");
        assert_eq!(f.mime_type, "image/jpeg");
    }

    #[test]
    fn documents_voice_and_stickers_are_described() {
        let d = media_file(
            "document",
            &json!({"document": {"file_id": "d", "file_name": "invoice.pdf", "mime_type": "application/pdf", "file_size": 12345}}),
        )
        .unwrap();
        assert_eq!(
            (d.display, d.file_name.as_deref(), d.size),
            ("file", Some("invoice.pdf"), Some(12345))
        );
        let v = media_file("voice", &json!({"voice": {"file_id": "v", "duration": 7}})).unwrap();
        assert_eq!(
            (v.display, v.mime_type.as_str(), v.duration),
            ("audio", "audio/ogg", Some(7))
        );
        let s = media_file("sticker", &json!({"sticker": {"file_id": "s", "emoji": "👍", "is_animated": false, "is_video": false}})).unwrap();
        assert_eq!((s.display, s.emoji.as_deref()), ("image", Some("👍")));
        let a = media_file(
            "sticker",
            &json!({"sticker": {"file_id": "s", "is_animated": true, "is_video": false}}),
        )
        .unwrap();
        assert_eq!(a.display, "file");
        assert!(media_file("location", &json!({"location": {"latitude": 1.0}})).is_none());
        assert!(media_file("photo", &json!({})).is_none());
    }
}
