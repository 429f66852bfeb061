//! Outgoing email (password resets, invitations). The default mailer writes each message
//! to the log and to the development mailbox (`/dev/mailbox`, for platform superusers);
//! with SMTP configured, messages go out through it.

use lettre::message::{header::ContentType, Mailbox};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use switchboard_db::accounts;
use switchboard_db::PgPool;

pub struct Email {
    pub to: String,
    pub subject: String,
    pub body: String,
}

pub enum Mailer {
    /// Log + development mailbox.
    Log { pool: PgPool },
    Smtp {
        transport: Box<AsyncSmtpTransport<Tokio1Executor>>,
        from: Mailbox,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("invalid address: {0}")]
    Address(String),
    #[error("the mail could not be sent: {0}")]
    Send(String),
}

impl Mailer {
    /// `smtp_url` like `smtp://user:password@host:587?tls=required` (STARTTLS),
    /// `smtps://user:password@host:465` (TLS) or `smtp://relay:25` (no TLS: a relay on a
    /// private network, without a password — a password is refused there, as it would
    /// cross the network in clear).
    pub fn smtp(smtp_url: &str, from: &str) -> Result<Self, MailError> {
        let parsed =
            url::Url::parse(smtp_url).map_err(|e| MailError::Send(format!("not a URL ({e})")))?;
        let tls = parsed.query_pairs().any(|(k, _)| k == "tls");
        if parsed.scheme() == "smtp" && !tls && parsed.password().is_some() {
            return Err(MailError::Send(
                "smtp:// without ?tls=required sends the password unencrypted: use \
                 smtp://…:587?tls=required (STARTTLS) or smtps://…:465"
                    .into(),
            ));
        }
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(smtp_url)
            .map_err(|e| MailError::Send(e.to_string()))?
            .build();
        let from = from
            .parse()
            .map_err(|_| MailError::Address(from.to_string()))?;
        Ok(Mailer::Smtp {
            transport: Box::new(transport),
            from,
        })
    }

    pub fn is_dev_mailbox(&self) -> bool {
        matches!(self, Mailer::Log { .. })
    }

    pub async fn send(&self, email: Email) -> Result<(), MailError> {
        match self {
            Mailer::Log { pool } => {
                tracing::info!(to = %email.to, subject = %email.subject, "mail (development mailbox):\n{}", email.body);
                accounts::store_email(pool, &email.to, &email.subject, &email.body)
                    .await
                    .map_err(|e| MailError::Send(e.to_string()))
            }
            Mailer::Smtp { transport, from } => {
                let to: Mailbox = email
                    .to
                    .parse()
                    .map_err(|_| MailError::Address(email.to.clone()))?;
                let message = Message::builder()
                    .from(from.clone())
                    .to(to)
                    .subject(email.subject)
                    .header(ContentType::TEXT_PLAIN)
                    .body(email.body)
                    .map_err(|e| MailError::Send(e.to_string()))?;
                transport
                    .send(message)
                    .await
                    .map(|_| ())
                    .map_err(|e| MailError::Send(e.to_string()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_password_never_travels_unencrypted() {
        let from = "Support <support@example.com>";
        let err = Mailer::smtp("smtp://me:secret@mail.example.com:587", from)
            .err()
            .expect("refused");
        assert!(err.to_string().contains("tls=required"), "{err}");
        assert!(Mailer::smtp("smtp://me:secret@mail.example.com:587?tls=required", from).is_ok());
        assert!(Mailer::smtp("smtps://me:secret@mail.example.com:465", from).is_ok());
        assert!(Mailer::smtp("smtp://relay.internal:25", from).is_ok());
    }
}
