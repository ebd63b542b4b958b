//! `pid` monitor: the process of an asynchronous exec resource is alive.
//!
//! The pid comes from the resource (the coordinator hands it to the monitor
//! actor); the check reads `/proc/<pid>/stat`, so it costs no fork. A zombie
//! counts as dead.

pub use understudy_brain::monitor::pid::PidConfig;

use super::{BuildProbe, Check, CheckFuture, Probe, ProbeBuild, ProbeEnv};

impl BuildProbe for PidConfig {
    fn probe(&self, _build: &ProbeBuild) -> Result<Box<dyn Probe>, String> {
        Ok(Box::new(PidProbe))
    }
}

struct PidProbe;

impl Probe for PidProbe {
    fn check(&mut self, env: &ProbeEnv) -> CheckFuture {
        let verdict = match env.target_pid {
            None => Check::Error("the target's process is not running".into()),
            Some(pid) => process_state(pid),
        };
        Box::pin(std::future::ready(verdict))
    }
}

/// Alive unless `/proc/<pid>` is gone or the process is a zombie.
pub fn process_state(pid: u32) -> Check {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => Check::Error(format!("process {pid} does not exist")),
        Ok(stat) => {
            // The state letter follows the command name's closing parenthesis.
            let state = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().next())
                .unwrap_or("?");
            if state == "Z" || state == "X" {
                Check::Error(format!("process {pid} has exited"))
            } else {
                Check::Normal
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_process_is_alive_and_a_reaped_one_is_not() {
        assert_eq!(process_state(std::process::id()), Check::Normal);
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        assert!(matches!(process_state(pid), Check::Error(_)));
    }

    #[test]
    fn zombie_counts_as_dead() {
        let child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        // Not reaped: wait until the kernel shows it as a zombie.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
            if stat
                .rsplit_once(')')
                .unwrap()
                .1
                .trim_start()
                .starts_with('Z')
            {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "child never exited");
            std::thread::yield_now();
        }
        assert!(matches!(process_state(pid), Check::Error(_)));
        drop(child);
    }
}
