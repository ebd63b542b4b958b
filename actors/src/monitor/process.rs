//! `process` monitor (the product's process name monitor): at least
//! `min_count` processes of a name are running.
//!
//! A check scans `/proc` off the actors' thread (`spawn_blocking`). A process
//! matches when its kernel name (the name in `/proc/<pid>/stat`, the same as
//! `/proc/<pid>/comm`, cut at 15 bytes) equals the configured name, or when
//! the file name of its first argument (argv\[0\] from `/proc/<pid>/cmdline`)
//! does; the latter is how names longer than 15 bytes match. `cmdline` is read
//! only for processes whose kernel name does not match. Zombies do not count;
//! threads are not listed in `/proc`, so they never count.
//!
//! The scan reads `/proc` itself rather than through `sysinfo`: the first
//! process refresh of `sysinfo` raises the daemon's `RLIMIT_NOFILE` soft limit
//! to the hard limit (inherited by every script the daemon starts) and keeps a
//! file open per process; it also keeps the name of a known pid after an
//! `exec`, which a wrapper script that execs the real program would hit.
//!
//! Reading `/proc/<pid>/cmdline` can hang while the process is stuck holding
//! its memory lock. A hung scan keeps its blocking thread, so while one is
//! still running no second scan starts: the check answers Error instead.

use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

pub use understudy_brain::monitor::process::{ProcessConfig, MAX_MIN_COUNT, MAX_NAME};

use super::{BuildProbe, Check, CheckFuture, Probe, ProbeBuild, ProbeEnv};

impl BuildProbe for ProcessConfig {
    fn probe(&self, _build: &ProbeBuild) -> Result<Box<dyn Probe>, String> {
        Ok(Box::new(ProcessProbe::new(&self.name, self.min_count)))
    }
}

/// Counts the processes of a name on each check.
pub struct ProcessProbe {
    name: Arc<str>,
    min_count: u32,
    /// Set while a scan runs (also after its check future was dropped).
    scanning: Arc<AtomicBool>,
}

impl ProcessProbe {
    pub fn new(name: &str, min_count: u32) -> Self {
        ProcessProbe {
            name: name.into(),
            min_count,
            scanning: Arc::new(AtomicBool::new(false)),
        }
    }
}

/// Clears the "scan running" flag when the scan ends, however it ends.
struct ScanGuard(Arc<AtomicBool>);

impl Drop for ScanGuard {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

impl Probe for ProcessProbe {
    fn check(&mut self, _env: &ProbeEnv) -> CheckFuture {
        let name = self.name.clone();
        let min_count = self.min_count;
        if self.scanning.swap(true, Ordering::AcqRel) {
            return Box::pin(std::future::ready(Check::Error(format!(
                "process \"{name}\": the previous scan of /proc has not finished"
            ))));
        }
        let guard = ScanGuard(self.scanning.clone());
        Box::pin(async move {
            let wanted = name.clone();
            let counted = tokio::task::spawn_blocking(move || {
                let _guard = guard;
                count_processes(Path::new("/proc"), wanted.as_bytes())
            })
            .await;
            match counted {
                Ok(Ok(running)) => verdict(&name, running, min_count),
                Ok(Err(e)) => {
                    Check::Error(format!("process \"{name}\": cannot list processes: {e}"))
                }
                Err(e) => Check::Error(format!("process \"{name}\": scan failed: {e}")),
            }
        })
    }
}

fn verdict(name: &str, running: u32, min_count: u32) -> Check {
    if running >= min_count {
        Check::Normal
    } else {
        Check::Error(format!(
            "process \"{name}\": {running} running, at least {min_count} wanted"
        ))
    }
}

/// Counts the live (not zombie) processes under `proc_root` (normally
/// `/proc`) whose kernel name or argv\[0\] file name is `name`. Blocking.
/// Processes that vanish during the scan are skipped.
pub fn count_processes(proc_root: &Path, name: &[u8]) -> io::Result<u32> {
    let mut count = 0u32;
    for entry in std::fs::read_dir(proc_root)? {
        let entry = match entry {
            Ok(e) => e,
            Err(_) => continue,
        };
        let file_name = entry.file_name();
        let bytes = file_name.as_bytes();
        if bytes.is_empty() || !bytes.iter().all(u8::is_ascii_digit) {
            continue;
        }
        let dir = entry.path();
        let Ok(stat) = std::fs::read(dir.join("stat")) else {
            continue;
        };
        let Some((comm, state)) = parse_stat(&stat) else {
            continue;
        };
        if state == b'Z' || state == b'X' {
            continue;
        }
        let matched = comm == name
            || std::fs::read(dir.join("cmdline"))
                .map(|cmdline| argv0_file_name(&cmdline) == name)
                .unwrap_or(false);
        if matched {
            count = count.saturating_add(1);
        }
    }
    Ok(count)
}

/// The command name and the state letter of a `/proc/<pid>/stat` line. The
/// name is in parentheses and may itself hold parentheses and spaces, so it
/// ends at the last `)`.
fn parse_stat(stat: &[u8]) -> Option<(&[u8], u8)> {
    let open = stat.iter().position(|b| *b == b'(')?;
    let close = stat.iter().rposition(|b| *b == b')')?;
    if close < open {
        return None;
    }
    let state = stat[close + 1..]
        .iter()
        .copied()
        .find(|b| !b.is_ascii_whitespace())?;
    Some((&stat[open + 1..close], state))
}

/// The file name of argv\[0\] (the bytes before the first NUL, after the last
/// `/`). Empty for kernel threads, whose `cmdline` is empty.
fn argv0_file_name(cmdline: &[u8]) -> &[u8] {
    let argv0 = cmdline.split(|b| *b == 0).next().unwrap_or_default();
    match argv0.iter().rposition(|b| *b == b'/') {
        Some(slash) => &argv0[slash + 1..],
        None => argv0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::CommandExt;
    use std::path::PathBuf;
    use std::time::{Duration, Instant};

    fn run(probe: &mut ProcessProbe) -> Check {
        crate::monitor::testing::run_check(probe)
    }

    /// A temporary folder, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(tag: &str) -> TempDir {
            let dir = std::env::temp_dir().join(format!("us-process-{}-{tag}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            TempDir(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// A child process, killed and reaped on drop.
    struct Child(std::process::Child);

    impl Drop for Child {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    fn state_of(pid: u32) -> Option<u8> {
        let stat = std::fs::read(format!("/proc/{pid}/stat")).ok()?;
        parse_stat(&stat).map(|(_, s)| s)
    }

    #[test]
    fn stat_and_cmdline_parsing() {
        assert_eq!(
            parse_stat(b"42 (nginx) S 1 42 42 0"),
            Some((&b"nginx"[..], b'S'))
        );
        assert_eq!(
            parse_stat(b"7 (a) b (c)) Z 1 7"),
            Some((&b"a) b (c)"[..], b'Z'))
        );
        assert_eq!(parse_stat(b"7 a S"), None);
        assert_eq!(parse_stat(b"7 (a)"), None);
        assert_eq!(
            argv0_file_name(b"/usr/sbin/nginx\0-g\0daemon off;\0"),
            b"nginx"
        );
        assert_eq!(argv0_file_name(b"sleep\x0030\0"), b"sleep");
        assert_eq!(argv0_file_name(b""), b"");
        assert_eq!(argv0_file_name(b"/bin/\0x"), b"");
    }

    #[test]
    fn counting_in_a_fake_proc() {
        let root = TempDir::new("fake");
        let add = |pid: &str, stat: &str, cmdline: &[u8]| {
            let dir = root.0.join(pid);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("stat"), stat).unwrap();
            std::fs::write(dir.join("cmdline"), cmdline).unwrap();
        };
        add("1", "1 (nginx) S 0", b"nginx: master process\0");
        add("2", "2 (nginx) S 1", b"nginx: worker process\0");
        add("3", "3 (nginx) Z 1", b"");
        add(
            "4",
            "4 (understudy-age) S 1",
            b"/opt/bin/understudy-agent\0-v\0",
        );
        add("5", "5 (python3) R 1", b"/usr/bin/python3\0/srv/nginx\0");
        add("6", "6 (kworker/0:1) I 2", b"");
        std::fs::create_dir_all(root.0.join("self")).unwrap();
        std::fs::create_dir_all(root.0.join("77")).unwrap(); // vanished
        assert_eq!(count_processes(&root.0, b"nginx").unwrap(), 2);
        assert_eq!(count_processes(&root.0, b"understudy-agent").unwrap(), 1);
        assert_eq!(count_processes(&root.0, b"understudy-age").unwrap(), 1);
        assert_eq!(count_processes(&root.0, b"python3").unwrap(), 1);
        assert_eq!(count_processes(&root.0, b"kworker/0:1").unwrap(), 1);
        assert_eq!(count_processes(&root.0, b"sleep").unwrap(), 0);
        assert!(count_processes(&root.0.join("missing"), b"x").is_err());
    }

    #[test]
    fn real_processes() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let unique = format!("us-psw-test-{}-{nanos}", std::process::id());
        let mut child = Child(
            std::process::Command::new("sleep")
                .arg0(format!("/nonexistent/{unique}"))
                .arg("30")
                .spawn()
                .expect("spawn sleep"),
        );
        let pid = child.0.id();

        let mut one = ProcessProbe::new(&unique, 1);
        assert_eq!(run(&mut one), Check::Normal);
        let mut two = ProcessProbe::new(&unique, 2);
        assert_eq!(
            run(&mut two),
            Check::Error(format!(
                "process \"{unique}\": 1 running, at least 2 wanted"
            ))
        );

        // Killed but not reaped yet: a zombie, which does not count.
        child.0.kill().unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while state_of(pid) != Some(b'Z') {
            assert!(Instant::now() < deadline, "child never became a zombie");
            std::thread::sleep(Duration::from_millis(10));
        }
        let gone = Check::Error(format!(
            "process \"{unique}\": 0 running, at least 1 wanted"
        ));
        assert_eq!(run(&mut one), gone);
        child.0.wait().unwrap();
        assert_eq!(run(&mut one), gone);
    }

    #[test]
    fn kernel_name_matches() {
        // Our own test binary: its kernel name is the (cut) file name.
        let stat = std::fs::read(format!("/proc/{}/stat", std::process::id())).unwrap();
        let (comm, _) = parse_stat(&stat).unwrap();
        let comm = String::from_utf8_lossy(comm).into_owned();
        let mut p = ProcessProbe::new(&comm, 1);
        assert_eq!(run(&mut p), Check::Normal);
    }

    #[test]
    fn no_second_scan_while_one_runs() {
        let mut p = ProcessProbe::new("x", 1);
        p.scanning.store(true, Ordering::Release);
        assert_eq!(
            run(&mut p),
            Check::Error("process \"x\": the previous scan of /proc has not finished".into())
        );
        p.scanning.store(false, Ordering::Release);
        assert!(matches!(run(&mut p), Check::Error(e) if e.contains("0 running")));
        assert!(!p.scanning.load(Ordering::Acquire));
    }
}
