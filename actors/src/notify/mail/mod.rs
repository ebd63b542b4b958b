//! The mail notifier: report mails over SMTP, one per alert routed to it.
//!
//! - [`config`]: [`MailConfig`], the `alerts.mail` settings, and their checks
//!   (pure: `understudy_brain::notify::mail`).
//! - [`password`]: [`LoadPassword`], which reads the password file.
//! - [`compose`]: the mail's content ([`compose::MailRecord`]) and its bytes.
//! - [`spool`]: `<state-dir>/mail-spool/`, where every mail waits until a
//!   server has taken it; written and emptied in batches (group commit).
//! - [`smtp`]: SMTP sessions (mails one after the other over one
//!   connection), with the alternative server.
//! - [`actor`]: [`MailNotifier`], which ties them together.
//!
//! Which alerts become mails (and the optional mails on settings changes,
//! suspend/resume and group starts) is the router's decision; this module
//! mails whatever [`Notify`](super::Notify) it is given, except its own
//! `alert 5` / `alert 6` events.
//!
//! Delivery guarantee: a mail is on disk (its spool batch flushed) before
//! the first attempt and leaves the spool only after a server accepted it
//! (250 after DATA), so neither a down server nor a daemon restart loses
//! it. A crash after that 250 and before the removal of the spool file
//! reached the disk sends the mail once more at the next start, with the
//! same Message-ID: at least once, never lost. Removals go in batches, and
//! during a burst they wait (up to 5 s) for the spool's writes, so one
//! crash can duplicate the mails accepted in the moments before it (those
//! whose removal had not reached the disk: during a burst, up to a few
//! seconds' worth), each recognisable as a duplicate. See [`spool`] for
//! each step.
//!
//! Messages: [`Notify`](super::Notify) (mail an alert), [`SendTest`],
//! [`Reconfigure`], [`GetMailQueue`].

pub mod actor;
pub mod compose;
pub mod password;
pub mod smtp;
pub mod spool;

use actix::prelude::*;

/// The mail settings live in the brain crate.
pub use understudy_brain::notify::mail as config;

pub use actor::{MailNotifier, RetryPolicy};
pub use config::{AlternativeServer, MailConfig, MailSender, Secret, SmtpAuth};
pub use password::LoadPassword;

/// Sends a test mail now, outside the spool, and answers which server took
/// it or why none did (`understudy alert test --mail`). Also raised as
/// `MailSent` / `MailFailed`.
#[derive(Message, Debug, Clone, PartialEq, Eq)]
#[rtype(result = "Result<String, String>")]
pub struct SendTest {
    pub cluster: String,
    /// Who asked (shown in the mail).
    pub by: String,
}

/// New settings (and the password read from them, see
/// [`LoadPassword::load_password`]) for the running notifier. Mails waiting
/// in the spool are tried again at once under them.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct Reconfigure {
    pub config: MailConfig,
    pub password: Option<Secret>,
}

/// Asks for the state of the queue (for status output).
#[derive(Message, Debug, Clone, Copy, PartialEq, Eq)]
#[rtype(result = "MailQueue")]
pub struct GetMailQueue;

/// Mails not yet accepted by a server.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MailQueue {
    /// Mails waiting (in the spool or being written to it).
    pub waiting: usize,
    /// Failed attempts on the oldest mail so far.
    pub failures: u32,
    /// Why its last attempt failed.
    pub last_cause: Option<String>,
}
