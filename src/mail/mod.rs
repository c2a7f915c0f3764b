//! Outgoing mail over SMTP (`[smtp]` in the configuration): the notice that a recording
//! export is ready. Off when no host is configured; a mail that cannot be sent is logged and
//! never fails the work that asked for it.

use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::config::{SmtpConfig, SmtpSecurity};

/// How long one SMTP exchange may take before it is given up.
const TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("invalid address {0:?}")]
    Address(String),
    #[error("cannot build the message: {0}")]
    Build(#[from] lettre::error::Error),
    #[error("SMTP: {0}")]
    Smtp(#[from] lettre::transport::smtp::Error),
}

/// A mail ready to go: one recipient, plain text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mail {
    pub to: Address,
    pub subject: String,
    pub body: String,
}

/// Parses a recipient the way a request gives it (`user@example.com`).
pub fn parse_address(text: &str) -> Result<Address, MailError> {
    text.trim()
        .parse::<Address>()
        .map_err(|_| MailError::Address(text.to_owned()))
}

#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer").field("from", &self.from.to_string()).finish()
    }
}

impl Mailer {
    /// `None` when mail is off (no SMTP host). Errors name what is wrong in the settings.
    pub fn from_config(c: &SmtpConfig) -> Result<Option<Mailer>, MailError> {
        if c.host.is_empty() {
            return Ok(None);
        }
        let from = c
            .from
            .parse::<Mailbox>()
            .map_err(|_| MailError::Address(c.from.clone()))?;
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&c.host)
            .port(c.port)
            .timeout(Some(TIMEOUT));
        builder = match c.security {
            SmtpSecurity::None => builder.tls(Tls::None),
            SmtpSecurity::Starttls => builder.tls(Tls::Required(TlsParameters::new(c.host.clone())?)),
            SmtpSecurity::Tls => builder.tls(Tls::Wrapper(TlsParameters::new(c.host.clone())?)),
        };
        if !c.username.is_empty() {
            builder = builder.credentials(Credentials::new(c.username.clone(), c.password.clone()));
        }
        Ok(Some(Mailer {
            transport: builder.build(),
            from,
        }))
    }

    pub async fn send(&self, mail: Mail) -> Result<(), MailError> {
        let message = Message::builder()
            .from(self.from.clone())
            .to(Mailbox::new(None, mail.to))
            .subject(mail.subject)
            .header(ContentType::TEXT_PLAIN)
            .body(mail.body)?;
        self.transport.send(message).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_checked() {
        assert!(parse_address("alice@example.com").is_ok());
        assert!(parse_address(" bob@example.org ").is_ok());
        for bad in ["", "alice", "@example.com", "a b@example.com", "alice@"] {
            assert!(parse_address(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn off_without_a_host_and_a_bad_sender_is_named() {
        let off = SmtpConfig::default();
        assert!(Mailer::from_config(&off).expect("config").is_none());
        let bad = SmtpConfig {
            host: "localhost".into(),
            from: "not an address".into(),
            ..SmtpConfig::default()
        };
        let err = Mailer::from_config(&bad).expect_err("bad sender");
        assert!(err.to_string().contains("not an address"), "{err}");
    }
}
