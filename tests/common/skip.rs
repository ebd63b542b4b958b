//! The one way a test skips: `return missing.skip();` on a [`Missing`]
//! from the checks below (or from [`missing`]). Shared by every test crate:
//! `tests/common/mod.rs` has it as `common::skip`; the tests of the actors
//! package include this file with `#[path]`.
//!
//! A skip is
//! - printed: `SKIP: TEST: REASON` on stderr (seen with `--nocapture`);
//! - recorded, with `UNDERSTUDY_SKIP_LOG=FILE` in the environment (tools/test
//!   sets it): a line `CRATE<TAB>TEST<TAB>TOOL<TAB>REASON` is appended to
//!   FILE, and tools/test counts the test as skipped instead of passed;
//! - a failure under CI (`CI` set, other than `0` or `false`): the test
//!   panics with the reason, since `.ci/run` provides everything the tests
//!   need, unless the tool is one of [`CI_CANNOT_PROVIDE`].
//!
//! Call it on the test's own thread (libtest names it after the test).

#![allow(dead_code)]

use std::io::Write;
use std::process::{Command, Stdio};

/// What a test may lack that `.ci/run` cannot provide: a skip for one of
/// these passes under CI too. Empty: `.ci/run` runs as root and installs
/// every program the tests use (iproute2, iputils-ping, util-linux, procps,
/// curl, python3, nginx, rsyslog, nftables, etcd-server, openssl, snmp,
/// snmptrapd, e2fsprogs, mount, systemd, prometheus, chromium and the Python package
/// aiosmtpd;
/// loop devices come with the machine's kernel).
pub const CI_CANNOT_PROVIDE: &[&str] = &[];

/// What the running test lacks here (`root`, a program, a Python package,
/// a kernel facility) and why it cannot run without it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Missing {
    pub tool: &'static str,
    pub reason: String,
}

pub fn missing(tool: &'static str, reason: impl Into<String>) -> Missing {
    Missing {
        tool,
        reason: reason.into(),
    }
}

impl Missing {
    /// Skips the running test (or the part of it the caller leaves out):
    /// prints and records it, or panics under CI (see the module
    /// documentation).
    pub fn skip(self) {
        let test = std::thread::current()
            .name()
            .unwrap_or("(not a test thread)")
            .to_string();
        if under_ci() && !CI_CANNOT_PROVIDE.contains(&self.tool) {
            panic!(
                "{test} would skip, which fails under CI: it lacks {}: {} \
                 (.ci/run provides it; or add it to CI_CANNOT_PROVIDE in tests/common/skip.rs)",
                self.tool, self.reason
            );
        }
        eprintln!("SKIP: {test}: {}", self.reason);
        if let Some(file) = std::env::var_os("UNDERSTUDY_SKIP_LOG").filter(|f| !f.is_empty()) {
            let clean = |s: &str| s.replace(['\t', '\n', '\r'], " ");
            let line = format!(
                "{}\t{}\t{}\t{}\n",
                env!("CARGO_CRATE_NAME"),
                clean(&test),
                clean(self.tool),
                clean(&self.reason)
            );
            // One write of one short line to a file opened for appending:
            // lines of tests running at the same time do not mix.
            let written = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&file)
                .and_then(|mut f| f.write_all(line.as_bytes()));
            if let Err(e) = written {
                panic!("cannot record the skip in {}: {e}", file.to_string_lossy());
            }
        }
    }
}

/// Whether this runs under CI: `CI` set to anything but "", "0" or "false".
pub fn under_ci() -> bool {
    std::env::var("CI")
        .is_ok_and(|v| !matches!(v.to_ascii_lowercase().as_str(), "" | "0" | "false"))
}

/// `Some` unless running as root.
pub fn need_root(what_for: &str) -> Option<Missing> {
    // SAFETY: geteuid has no preconditions.
    (unsafe { libc::geteuid() } != 0).then(|| missing("root", format!("not root ({what_for})")))
}

/// `Some` unless `program` is on PATH.
pub fn need_program(program: &'static str, package: &str) -> Option<Missing> {
    let found = std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()));
    (!found).then(|| {
        missing(
            program,
            format!("`{program}` is not installed (Debian package {package})"),
        )
    })
}

/// `Some` unless `program` is on PATH or in one of `dirs` (system tools in
/// `/usr/sbin` when PATH lacks it).
pub fn need_program_in(program: &'static str, package: &str, dirs: &[&str]) -> Option<Missing> {
    let in_dirs = dirs
        .iter()
        .any(|d| std::path::Path::new(d).join(program).is_file());
    if in_dirs {
        None
    } else {
        need_program(program, package)
    }
}

/// `Some` unless `python3` can import `module`.
pub fn need_python_module(module: &'static str) -> Option<Missing> {
    if let Some(m) = need_program("python3", "python3") {
        return Some(m);
    }
    let imported = Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    (!imported).then(|| {
        missing(
            module,
            format!("python3 cannot import {module} (pip install {module})"),
        )
    })
}
