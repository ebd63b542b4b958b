//! The SMTP fixture (tests/fixtures/smtpd.py, aiosmtpd) for daemon and lab
//! tests: started on loopback or inside a namespace, it stores every mail
//! it accepts as a file, which the tests read.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/smtpd.py");
const WAIT: Duration = Duration::from_secs(20);

pub struct Smtpd {
    child: Child,
    dir: PathBuf,
    pub port: u16,
}

impl Smtpd {
    /// Starts the fixture with `args`, storing mails in `dir`, inside the
    /// network namespace `netns` when given; `None`, after skipping the test
    /// (see [`super::skip`]), without python3 + aiosmtpd.
    pub fn start(dir: &Path, netns: Option<&str>, args: &[&str]) -> Option<Smtpd> {
        if let Some(missing) = super::skip::need_python_module("aiosmtpd") {
            missing.skip();
            return None;
        }
        std::fs::create_dir_all(dir).unwrap();
        let mut cmd = match netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, "python3"]);
                c
            }
            None => Command::new("python3"),
        };
        let child = cmd
            .arg(FIXTURE)
            .arg(dir)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the SMTP fixture");
        let port_file = dir.join("port");
        let end = Instant::now() + WAIT;
        while !port_file.exists() {
            assert!(Instant::now() < end, "the SMTP fixture does not listen");
            std::thread::sleep(Duration::from_millis(20));
        }
        let port = std::fs::read_to_string(&port_file)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        Some(Smtpd {
            child,
            dir: dir.to_path_buf(),
            port,
        })
    }

    /// Raw text of every mail received so far, in order of arrival.
    pub fn mails(&self) -> Vec<String> {
        let mut records: Vec<_> = std::fs::read_dir(&self.dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        records.sort();
        records
            .iter()
            .map(|p| std::fs::read_to_string(p.with_extension("eml")).unwrap_or_default())
            .collect()
    }

    /// Waits for a mail containing every one of `needles` and returns it.
    pub fn wait_mail(&self, needles: &[&str]) -> String {
        let end = Instant::now() + WAIT;
        loop {
            if let Some(m) = self
                .mails()
                .into_iter()
                .find(|m| needles.iter().all(|n| m.contains(n)))
            {
                return m;
            }
            assert!(
                Instant::now() < end,
                "no mail with {needles:?}; got:\n{}",
                self.mails().join("\n----\n")
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Smtpd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
