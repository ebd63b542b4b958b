//! `userspace` monitor (placeholder until its probe is written).

use serde::{Deserialize, Serialize};

use super::{CheckFuture, Probe, ProbeBuild, ProbeEnv};
use crate::model::problems::Problems;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename = "UserspaceConfig")]
pub struct UserspaceConfig {}

impl UserspaceConfig {
    pub fn validate(&self, _path: &str, _problems: &mut Problems) {}

    pub fn probe(&self, _build: &ProbeBuild) -> Result<Box<dyn Probe>, String> {
        Err("not implemented yet".into())
    }
}

#[allow(dead_code)]
struct Unused;
impl Probe for Unused {
    fn check(&mut self, _env: &ProbeEnv) -> CheckFuture {
        Box::pin(async { super::Check::Normal })
    }
}
