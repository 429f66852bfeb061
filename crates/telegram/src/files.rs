//! Files in conversations: what users send (downloaded through the bot on demand, for the
//! desk) and what operators send (stored with the message, uploaded by delivery).

use serde_json::json;
use switchboard_core::bot::Reply;
use switchboard_core::conversation::{apply, OperatorAction};
use switchboard_core::{ConversationId, MessageId, TenantId};
use switchboard_db::events::NewEvent;
use switchboard_db::messages::{self, Sender};
use switchboard_db::outbox::{enqueue_delivery, DeliveryJob};
use switchboard_db::{attachments, conversations, events};
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
    #[error("the bot is not connected")]
    NoBot,
    #[error(transparent)]
    Telegram(#[from] TgError),
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

    /// Stores an operator's file (with an optional caption) and queues its delivery.
    pub async fn reply_with_file(
        &self,
        tenant: TenantId,
        id: ConversationId,
        op: Operator,
        caption: &str,
        upload: Upload,
    ) -> Result<MessageId, OperatorError> {
        let mut tx = self.pool.begin().await?;
        let conv = conversations::get_locked(&mut tx, tenant, id).await?;
        let to = apply(
            conv.state(),
            OperatorAction::Reply,
            op.user,
            op.role >= switchboard_core::Role::Admin,
        )?;
        if to != conv.state() {
            conversations::set_state(&mut *tx, tenant, id, to, None, Some(op.user), None).await?;
            events::insert(
                &mut tx,
                tenant,
                NewEvent::new("conversation.claimed", op.actor_for_log())
                    .conversation(id, conv.end_user_id),
            )
            .await?;
        }
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
        enqueue_delivery(
            &mut *tx,
            &DeliveryJob::new(tenant, conv.bot_id, conv.end_user_id),
            None,
        )
        .await?;
        conversations::touch(&mut *tx, tenant, id, true).await?;
        tx.commit().await?;
        self.notifier.jobs_queued();
        self.notifier.desk(tenant, id, "message");
        Ok(ids[0])
    }
}
