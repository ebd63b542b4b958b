//! The pure core of understudy: everything the supervisor decides, with no
//! I/O, no actix and no async runtime. The shell (`understudy-actors`) does
//! the I/O and feeds facts in.
//!
//! - [`problems`]: the problem collector of configuration checks.
//! - [`host`]: host / port checks and texts shared by every peer-facing
//!   setting.
//! - [`monitor`]: every monitor kind's settings; [`monitor::MonitorKind`]
//!   registers them.
//! - [`notify`]: the notifiers' settings (mail, syslog, lamps).

pub mod host;
pub mod monitor;
pub mod notify;
pub mod problems;
