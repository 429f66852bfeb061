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

/// The link that accepts an invitation.
pub fn invitation_link(state: &crate::AppState, token: &str) -> String {
    format!("{}/invite/{token}", state.web.public_url)
}

/// What became of an invitation's mail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivered {
    /// Handed to the mail server.
    Sent,
    /// No mail server is configured: the mail went to the development mailbox only, so
    /// the link must be passed on by hand.
    NoMailServer,
    /// The mail server refused it (logged).
    Failed,
}

impl Delivered {
    pub fn as_str(&self) -> &'static str {
        match self {
            Delivered::Sent => "sent",
            Delivered::NoMailServer => "no_mail_server",
            Delivered::Failed => "failed",
        }
    }
}

/// Mails an invitation link in `lang`, and says what became of it.
pub async fn send_invitation(
    state: &crate::AppState,
    lang: crate::i18n::UiLang,
    invited: &switchboard_app::team::NewInvitation,
    link: &str,
) -> Delivered {
    let c = &state.web.catalogs;
    let role = invited.invitation.role.as_str();
    let mail = Email {
        to: invited.invitation.email.clone(),
        subject: c.t(
            lang,
            "mail.invite.subject",
            &[("org", invited.organization.clone())],
        ),
        body: c.t(
            lang,
            "mail.invite.body",
            &[
                ("org", invited.organization.clone()),
                ("inviter", invited.inviter.clone()),
                ("role", c.t(lang, &format!("role.{role}"), &[])),
                ("link", link.to_string()),
            ],
        ),
    };
    match state.web.mailer.send(mail).await {
        _ if state.web.mailer.is_dev_mailbox() => Delivered::NoMailServer,
        Err(e) => {
            tracing::error!(error = %e, "invitation mail not sent");
            Delivered::Failed
        }
        Ok(()) => Delivered::Sent,
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
