//! `message` monitor (message receive): turns Error when a message with its
//! category and keyword arrives, and Normal again on a clear message.
//!
//! Messages reach the coordinator from `understudy message send` and, for
//! category `BMCNOTICE`, as SNMP traps through the receiver in [`trap`];
//! the coordinator hands each to the message monitors it is for, and the
//! monitor actor keeps the outstanding notice in [`ProbeEnv::message`].

pub mod trap;

pub use understudy_brain::monitor::message::{
    MessageConfig, BMC_CATEGORY, DEFAULT_TRAP_PORT, MAX_CATEGORY, MAX_KEYWORD,
};

use super::{BuildProbe, Check, CheckFuture, Probe, ProbeBuild, ProbeEnv};

impl BuildProbe for MessageConfig {
    fn probe(&self, _build: &ProbeBuild) -> Result<Box<dyn Probe>, String> {
        Ok(Box::new(MessageProbe))
    }
}

struct MessageProbe;

impl Probe for MessageProbe {
    fn check(&mut self, env: &ProbeEnv) -> CheckFuture {
        let verdict = match &env.message {
            Some(text) => Check::Error(text.clone()),
            None => Check::Normal,
        };
        Box::pin(std::future::ready(verdict))
    }
}
