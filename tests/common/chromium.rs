//! Headless Chromium (Debian's `chromium`) driven over the DevTools
//! protocol on a pipe (`--remote-debugging-pipe`: commands on its fd 3,
//! answers and events on its fd 4, each a JSON message ended by a NUL),
//! so that the tests need no WebSocket client: one page, JavaScript
//! evaluated in it, screenshots.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use base64::Engine;
use serde_json::{json, Value};

use super::skip::{self, Missing};

/// How long one DevTools command may take.
const ANSWER_WITHIN: Duration = Duration::from_secs(20);

pub fn chromium_unavailable() -> Option<Missing> {
    skip::need_root("Chromium runs as root with --no-sandbox in the lab's namespace")
        .or_else(|| skip::need_program("chromium", "chromium"))
}

pub struct Chromium {
    child: Child,
    commands: File,
    answers: mpsc::Receiver<Value>,
    next_id: u64,
    session: String,
}

impl Chromium {
    /// Starts Chromium (inside network namespace `netns` when given) with a
    /// fresh profile under `profile`, opens `url` and attaches to the page.
    pub fn open(netns: Option<&str>, profile: &Path, url: &str) -> Chromium {
        let (cmd_r, cmd_w) = nix::unistd::pipe().expect("pipe");
        let (ans_r, ans_w) = nix::unistd::pipe().expect("pipe");
        let mut cmd = match netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, "chromium"]);
                c
            }
            None => Command::new("chromium"),
        };
        cmd.args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--no-first-run",
            "--no-default-browser-check",
            "--remote-debugging-pipe",
            "--window-size=1280,900",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("about:blank")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        let (cr, aw) = (cmd_r.as_raw_fd(), ans_w.as_raw_fd());
        // SAFETY: only async-signal-safe calls (fcntl, dup2) between fork
        // and exec. Both ends are first copied above fd 9, so that placing
        // them on 3 and 4 cannot overwrite one with the other.
        unsafe {
            cmd.pre_exec(move || {
                let r = libc::fcntl(cr, libc::F_DUPFD, 10);
                let w = libc::fcntl(aw, libc::F_DUPFD, 10);
                if r < 0 || w < 0 || libc::dup2(r, 3) < 0 || libc::dup2(w, 4) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = super::spawn_locked(&mut cmd).expect("start chromium");
        drop(cmd_r);
        drop(ans_w);
        let (tx, answers) = mpsc::channel();
        let reader = File::from(ans_r);
        std::thread::spawn(move || {
            let mut reader = BufReader::new(reader);
            let mut message = Vec::new();
            loop {
                message.clear();
                match reader.read_until(0, &mut message) {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
                if message.last() == Some(&0) {
                    message.pop();
                }
                if let Ok(v) = serde_json::from_slice::<Value>(&message) {
                    if tx.send(v).is_err() {
                        return;
                    }
                }
            }
        });
        let mut browser = Chromium {
            child,
            commands: File::from(cmd_w),
            answers,
            next_id: 0,
            session: String::new(),
        };
        let target = browser.call(None, "Target.createTarget", json!({ "url": url }));
        let id = target["targetId"].as_str().expect("targetId").to_string();
        let attached = browser.call(
            None,
            "Target.attachToTarget",
            json!({ "targetId": id, "flatten": true }),
        );
        browser.session = attached["sessionId"]
            .as_str()
            .expect("sessionId")
            .to_string();
        browser
    }

    /// Sends a command (to the page's session, or the browser's when
    /// `session` is None) and waits for its result.
    fn call(&mut self, session: Option<&str>, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = json!({ "id": id, "method": method, "params": params });
        if let Some(s) = session {
            message["sessionId"] = json!(s);
        }
        let mut bytes = serde_json::to_vec(&message).expect("json");
        bytes.push(0);
        self.commands
            .write_all(&bytes)
            .unwrap_or_else(|e| panic!("chromium: {method}: {e}"));
        let end = std::time::Instant::now() + ANSWER_WITHIN;
        loop {
            let left = end.saturating_duration_since(std::time::Instant::now());
            let v = self.answers.recv_timeout(left).unwrap_or_else(|e| {
                panic!("chromium: no answer to {method} within {ANSWER_WITHIN:?}: {e}")
            });
            if v["id"].as_u64() == Some(id) {
                if let Some(err) = v.get("error") {
                    panic!("chromium: {method}: {err}");
                }
                return v["result"].clone();
            }
        }
    }

    /// Evaluates `expression` in the page; its value (JSON-able).
    pub fn eval(&mut self, expression: &str) -> Value {
        let session = self.session.clone();
        let r = self.call(
            Some(&session),
            "Runtime.evaluate",
            json!({ "expression": expression, "returnByValue": true }),
        );
        if let Some(e) = r.get("exceptionDetails") {
            panic!("chromium: {expression}: {e}");
        }
        r["result"]["value"].clone()
    }

    /// A PNG of the page as shown.
    pub fn screenshot(&mut self, to: &Path) {
        let session = self.session.clone();
        let r = self.call(
            Some(&session),
            "Page.captureScreenshot",
            json!({ "format": "png" }),
        );
        let png = base64::engine::general_purpose::STANDARD
            .decode(r["data"].as_str().expect("screenshot data"))
            .expect("screenshot base64");
        if let Some(dir) = to.parent() {
            std::fs::create_dir_all(dir).expect("screenshot folder");
        }
        std::fs::write(to, png).unwrap_or_else(|e| panic!("{}: {e}", to.display()));
    }
}

impl Drop for Chromium {
    fn drop(&mut self) {
        // Chromium's helpers (renderer, GPU, zygote) follow the browser
        // when it ends; SIGKILL of the browser alone would leave them.
        let _ = self.call_quiet("Browser.close");
        let end = std::time::Instant::now() + Duration::from_secs(10);
        while std::time::Instant::now() < end {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(super::POLL);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Chromium {
    fn call_quiet(&mut self, method: &str) -> Option<()> {
        self.next_id += 1;
        let message = json!({ "id": self.next_id, "method": method, "params": {} });
        let mut bytes = serde_json::to_vec(&message).ok()?;
        bytes.push(0);
        self.commands.write_all(&bytes).ok()
    }
}
