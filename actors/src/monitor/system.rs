//! `system` monitor (the product's system resource monitor): CPU, memory and
//! disk usage against a warning and an error level, each of which counts only
//! once usage has stayed at or above it for a while.
//!
//! Each check takes one sample, off the actors' thread (`spawn_blocking`):
//!
//! - CPU: busy share of all CPUs together since the previous sample (as
//!   `sysinfo` computes it from `/proc/stat`; the first check takes two
//!   readings 200 ms apart). Rounded down.
//! - memory: `(total - available) / total` from `/proc/meminfo`. Rounded down.
//! - disk: `statvfs` of the mount point, counted as `df` does: used blocks
//!   over used plus available-to-users blocks, rounded up. The path must be a
//!   mount point (listed in `/proc/self/mountinfo`): if the file system is
//!   not mounted, the folder under it would report the parent's usage.
//!
//! [`Evaluator`] keeps, per metric and level, since when usage has been at or
//! above the level in every sample, and answers Error when a metric has held
//! its error level for its duration, else Warning when one has held its
//! warning level, else Normal.
//!
//! A sample that hangs (a stuck network file system in `statvfs`) keeps its
//! blocking thread and the sampler; the next checks answer Error at once
//! (naming what the hung sample waits for) instead of queueing behind it.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, TryLockError};
use std::time::{Duration, Instant};

use sysinfo::{CpuRefreshKind, MemoryRefreshKind, System};

pub use understudy_brain::monitor::system::{DiskThreshold, SystemConfig, Threshold, MAX_DURATION};

use super::{BuildProbe, Check, CheckFuture, Probe, ProbeBuild, ProbeEnv};

// ---------------------------------------------------------------------------
// the probe

impl BuildProbe for SystemConfig {
    fn probe(&self, _build: &ProbeBuild) -> Result<Box<dyn Probe>, String> {
        Ok(Box::new(SystemProbe::new(self.clone())))
    }
}

/// Samples usage on each check and judges it against the levels.
pub struct SystemProbe {
    config: Arc<SystemConfig>,
    sampler: Arc<Mutex<Sampler>>,
    /// What the running sample reads now, for the message when it hangs.
    step: Arc<Mutex<String>>,
}

struct Sampler {
    sys: System,
    cpu_primed: bool,
    evaluator: Evaluator,
}

impl SystemProbe {
    pub fn new(config: SystemConfig) -> Self {
        SystemProbe {
            config: Arc::new(config),
            sampler: Arc::new(Mutex::new(Sampler {
                sys: System::new(),
                cpu_primed: false,
                evaluator: Evaluator::default(),
            })),
            step: Arc::new(Mutex::new(String::new())),
        }
    }
}

impl Probe for SystemProbe {
    fn check(&mut self, _env: &ProbeEnv) -> CheckFuture {
        let config = self.config.clone();
        let sampler = self.sampler.clone();
        let step = self.step.clone();
        Box::pin(async move {
            let judged = tokio::task::spawn_blocking(move || {
                let mut sampler = match sampler.try_lock() {
                    Ok(s) => s,
                    Err(TryLockError::Poisoned(p)) => p.into_inner(),
                    Err(TryLockError::WouldBlock) => {
                        let what = step.lock().map(|s| s.clone()).unwrap_or_default();
                        return Check::Error(format!(
                            "the previous sample has not finished (still reading {what})"
                        ));
                    }
                };
                let sample = sampler.sample(&config, &step);
                sampler.evaluator.evaluate(&config, &sample, Instant::now())
            })
            .await;
            judged.unwrap_or_else(|e| Check::Error(format!("sampling failed: {e}")))
        })
    }
}

impl Sampler {
    /// Reads the metrics `config` has levels for. Blocking.
    fn sample(&mut self, config: &SystemConfig, step: &Mutex<String>) -> Sample {
        let set_step = |what: &str| {
            if let Ok(mut s) = step.lock() {
                what.clone_into(&mut *s);
            }
        };
        let cpu = config.cpu.as_ref().map(|_| {
            set_step("CPU usage");
            self.cpu_percent()
        });
        let memory = config.memory.as_ref().map(|_| {
            set_step("memory usage");
            self.memory_percent()
        });
        let disks = config
            .disks
            .iter()
            .map(|d| {
                set_step(&format!("disk {}", d.path));
                disk_percent(&d.path)
            })
            .collect();
        Sample { cpu, memory, disks }
    }

    fn cpu_percent(&mut self) -> Result<u32, String> {
        let kind = CpuRefreshKind::nothing().with_cpu_usage();
        if !self.cpu_primed {
            // Usage is a difference between two readings.
            self.sys.refresh_cpu_specifics(kind);
            std::thread::sleep(sysinfo::MINIMUM_CPU_UPDATE_INTERVAL);
            self.cpu_primed = true;
        }
        self.sys.refresh_cpu_specifics(kind);
        let usage = self.sys.global_cpu_usage();
        if usage.is_finite() {
            Ok(usage.clamp(0.0, 100.0).floor() as u32)
        } else {
            Err("CPU usage is unavailable".into())
        }
    }

    fn memory_percent(&mut self) -> Result<u32, String> {
        self.sys
            .refresh_memory_specifics(MemoryRefreshKind::nothing().with_ram());
        let total = self.sys.total_memory();
        let available = self.sys.available_memory().min(total);
        if total == 0 {
            return Err("memory usage is unavailable (cannot read /proc/meminfo)".into());
        }
        Ok(percent_floor(
            u128::from(total - available),
            u128::from(total),
        ))
    }
}

fn percent_floor(part: u128, whole: u128) -> u32 {
    if whole == 0 {
        return 0;
    }
    u32::try_from((part * 100 / whole).min(100)).unwrap_or(100)
}

/// Space in use on the file system mounted at `path`, percent, as `df`
/// counts it. Blocking.
pub fn disk_percent(path: &str) -> Result<u32, String> {
    let real = std::fs::canonicalize(path).map_err(|e| format!("disk {path}: {e}"))?;
    let mounted = is_mount_point(&real)
        .map_err(|e| format!("disk {path}: cannot read /proc/self/mountinfo: {e}"))?;
    if !mounted {
        return Err(format!("disk {path}: not a mount point"));
    }
    let st = nix::sys::statvfs::statvfs(&real).map_err(|e| format!("disk {path}: {}", e.desc()))?;
    let blocks = u128::from(st.blocks());
    let free = u128::from(st.blocks_free());
    let available = u128::from(st.blocks_available());
    Ok(df_percent(blocks.saturating_sub(free), available))
}

/// Whether the canonical path `real` is listed as a mount point.
fn is_mount_point(real: &Path) -> std::io::Result<bool> {
    let mountinfo = std::fs::read("/proc/self/mountinfo")?;
    Ok(mount_points(&mountinfo).iter().any(|m| m == real))
}

/// `df`'s Use%: used / (used + available to users), rounded up.
fn df_percent(used: u128, available: u128) -> u32 {
    let whole = used + available;
    if whole == 0 {
        return 0;
    }
    u32::try_from((used * 100).div_ceil(whole).min(100)).unwrap_or(100)
}

/// The mount points (fifth field) of `/proc/self/mountinfo`, with the octal
/// escapes (`\040` for a space) undone.
fn mount_points(mountinfo: &[u8]) -> Vec<PathBuf> {
    mountinfo
        .split(|b| *b == b'\n')
        .filter_map(|line| line.split(|b| *b == b' ').nth(4))
        .map(|field| PathBuf::from(OsString::from_vec(unescape_octal(field))))
        .collect()
}

fn unescape_octal(field: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(field.len());
    let mut i = 0;
    while i < field.len() {
        let digits = field.get(i + 1..i + 4);
        match digits {
            Some(d) if field[i] == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)) => {
                let value = d.iter().fold(0u32, |v, c| v * 8 + u32::from(c - b'0'));
                out.push(u8::try_from(value).unwrap_or(b'?'));
                i += 4;
            }
            _ => {
                out.push(field[i]);
                i += 1;
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------
// judging samples (pure)

/// One sample: `None` for a metric without levels, `Err` when it could not
/// be read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sample {
    pub cpu: Option<Result<u32, String>>,
    pub memory: Option<Result<u32, String>>,
    /// In the order of the config's `disks`.
    pub disks: Vec<Result<u32, String>>,
}

/// Since when a metric has been at or above one level, sample after sample.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Held {
    since: Option<Instant>,
}

impl Held {
    /// Records a sample taken at `now`; true when the metric has been at or
    /// above the level in every sample for at least `duration`.
    pub fn update(&mut self, at_or_above: bool, now: Instant, duration: Duration) -> bool {
        if !at_or_above {
            self.since = None;
            return false;
        }
        let since = *self.since.get_or_insert(now);
        now.saturating_duration_since(since) >= duration
    }

    pub fn reset(&mut self) {
        self.since = None;
    }
}

/// What one metric's levels say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Normal,
    /// At or above the warning level (the value) for the duration.
    Warning(u32),
    /// At or above the error level (the value) for the duration.
    Error(u32),
}

/// Both levels of one metric.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LevelTracker {
    warning: Held,
    error: Held,
}

impl LevelTracker {
    /// Records `value` (percent) sampled at `now`.
    pub fn observe(&mut self, value: u32, t: &Threshold, now: Instant) -> Level {
        let duration = Duration::from_secs(u64::from(t.duration));
        let error = self
            .error
            .update(t.error.is_some_and(|e| value >= e), now, duration);
        let warning = self
            .warning
            .update(t.warning.is_some_and(|w| value >= w), now, duration);
        match (t.error, t.warning) {
            (Some(e), _) if error => Level::Error(e),
            (_, Some(w)) if warning => Level::Warning(w),
            _ => Level::Normal,
        }
    }

    /// Forgets the history (after a sample that could not be read).
    pub fn reset(&mut self) {
        self.warning.reset();
        self.error.reset();
    }
}

/// Judges samples against a config's levels, remembering how long each level
/// has held.
#[derive(Debug, Clone, Default)]
pub struct Evaluator {
    cpu: LevelTracker,
    memory: LevelTracker,
    disks: Vec<LevelTracker>,
}

impl Evaluator {
    pub fn evaluate(&mut self, config: &SystemConfig, sample: &Sample, now: Instant) -> Check {
        let mut errors = Vec::new();
        let mut warnings = Vec::new();
        let mut judge = |tracker: &mut LevelTracker,
                         what: &str,
                         t: &Threshold,
                         value: Option<&Result<u32, String>>| {
            match value {
                Some(Ok(v)) => match tracker.observe(*v, t, now) {
                    Level::Normal => {}
                    Level::Warning(l) => warnings.push(describe(what, *v, l, t.duration)),
                    Level::Error(l) => errors.push(describe(what, *v, l, t.duration)),
                },
                Some(Err(e)) => {
                    tracker.reset();
                    errors.push(e.clone());
                }
                None => tracker.reset(),
            }
        };
        if let Some(t) = &config.cpu {
            judge(&mut self.cpu, "cpu", t, sample.cpu.as_ref());
        }
        if let Some(t) = &config.memory {
            judge(&mut self.memory, "memory", t, sample.memory.as_ref());
        }
        self.disks
            .resize_with(config.disks.len(), LevelTracker::default);
        for (i, (d, tracker)) in config.disks.iter().zip(&mut self.disks).enumerate() {
            judge(
                tracker,
                &format!("disk {}", d.path),
                &d.threshold(),
                sample.disks.get(i),
            );
        }
        if !errors.is_empty() {
            Check::Error(errors.join("; "))
        } else if !warnings.is_empty() {
            Check::Warning(warnings.join("; "))
        } else {
            Check::Normal
        }
    }
}

/// `memory 93 % >= 90 % for 60 s`
fn describe(what: &str, value: u32, level: u32, duration: u32) -> String {
    if duration == 0 {
        format!("{what} {value} % >= {level} %")
    } else {
        format!("{what} {value} % >= {level} % for {duration} s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(t0: Instant, s: u64) -> Instant {
        t0 + Duration::from_secs(s)
    }

    fn thr(warning: Option<u32>, error: Option<u32>, duration: u32) -> Threshold {
        Threshold {
            warning,
            error,
            duration,
        }
    }

    fn disk(path: &str, warning: Option<u32>, error: Option<u32>, duration: u32) -> DiskThreshold {
        DiskThreshold {
            path: path.into(),
            warning,
            error,
            duration,
        }
    }

    fn run(probe: &mut SystemProbe) -> Check {
        crate::monitor::testing::run_check(probe)
    }

    #[test]
    fn held_needs_every_sample_for_the_duration() {
        let t0 = Instant::now();
        let d = Duration::from_secs(60);
        let mut h = Held::default();
        assert!(!h.update(false, t0, d));
        assert!(!h.update(true, secs(t0, 10), d));
        assert!(!h.update(true, secs(t0, 69), d));
        assert!(h.update(true, secs(t0, 70), d));
        assert!(h.update(true, secs(t0, 500), d));
        // One sample below starts over.
        assert!(!h.update(false, secs(t0, 501), d));
        assert!(!h.update(true, secs(t0, 502), d));
        assert!(!h.update(true, secs(t0, 561), d));
        assert!(h.update(true, secs(t0, 562), d));
        h.reset();
        assert!(!h.update(true, secs(t0, 600), d));
    }

    #[test]
    fn held_with_zero_duration_counts_at_once() {
        let t0 = Instant::now();
        let mut h = Held::default();
        assert!(h.update(true, t0, Duration::ZERO));
        assert!(!h.update(false, secs(t0, 1), Duration::ZERO));
        assert!(h.update(true, secs(t0, 2), Duration::ZERO));
    }

    #[test]
    fn held_tolerates_a_clock_that_does_not_move() {
        let t0 = Instant::now();
        let mut h = Held::default();
        assert!(!h.update(true, secs(t0, 5), Duration::from_secs(1)));
        // An earlier timestamp must not panic or count.
        assert!(!h.update(true, t0, Duration::from_secs(1)));
    }

    #[test]
    fn levels_of_one_metric() {
        let t0 = Instant::now();
        let t = thr(Some(80), Some(90), 60);
        let mut m = LevelTracker::default();
        assert_eq!(m.observe(50, &t, t0), Level::Normal);
        assert_eq!(m.observe(85, &t, secs(t0, 60)), Level::Normal);
        assert_eq!(m.observe(95, &t, secs(t0, 90)), Level::Normal);
        // Warning level held since 60, error level only since 90.
        assert_eq!(m.observe(95, &t, secs(t0, 120)), Level::Warning(80));
        assert_eq!(m.observe(90, &t, secs(t0, 150)), Level::Error(90));
        // Back between the levels: the error level starts over, the warning
        // level still holds.
        assert_eq!(m.observe(89, &t, secs(t0, 180)), Level::Warning(80));
        assert_eq!(m.observe(99, &t, secs(t0, 200)), Level::Warning(80));
        assert_eq!(m.observe(99, &t, secs(t0, 260)), Level::Error(90));
        assert_eq!(m.observe(79, &t, secs(t0, 270)), Level::Normal);
        assert_eq!(m.observe(99, &t, secs(t0, 280)), Level::Normal);
        m.reset();
        assert_eq!(m.observe(99, &t, secs(t0, 340)), Level::Normal);
        assert_eq!(m.observe(99, &t, secs(t0, 400)), Level::Error(90));
    }

    #[test]
    fn a_single_level() {
        let t0 = Instant::now();
        let only_error = thr(None, Some(90), 0);
        let mut m = LevelTracker::default();
        assert_eq!(m.observe(89, &only_error, t0), Level::Normal);
        assert_eq!(m.observe(90, &only_error, t0), Level::Error(90));
        let only_warning = thr(Some(70), None, 30);
        let mut m = LevelTracker::default();
        assert_eq!(m.observe(100, &only_warning, t0), Level::Normal);
        assert_eq!(
            m.observe(100, &only_warning, secs(t0, 30)),
            Level::Warning(70)
        );
    }

    #[test]
    fn judging_samples() {
        let t0 = Instant::now();
        let config = SystemConfig {
            cpu: Some(thr(Some(80), Some(95), 60)),
            memory: Some(thr(None, Some(90), 0)),
            disks: vec![disk("/data", Some(80), Some(95), 0)],
        };
        let sample = |cpu: u32, memory: u32, data: Result<u32, String>| Sample {
            cpu: Some(Ok(cpu)),
            memory: Some(Ok(memory)),
            disks: vec![data],
        };
        let mut e = Evaluator::default();
        assert_eq!(
            e.evaluate(&config, &sample(10, 10, Ok(10)), t0),
            Check::Normal
        );
        assert_eq!(
            e.evaluate(&config, &sample(10, 10, Ok(85)), secs(t0, 60)),
            Check::Warning("disk /data 85 % >= 80 %".into())
        );
        assert_eq!(
            e.evaluate(&config, &sample(97, 93, Ok(85)), secs(t0, 120)),
            Check::Error("memory 93 % >= 90 %".into())
        );
        assert_eq!(
            e.evaluate(&config, &sample(97, 10, Ok(85)), secs(t0, 180)),
            Check::Error("cpu 97 % >= 95 % for 60 s".into())
        );
        assert_eq!(
            e.evaluate(&config, &sample(85, 91, Ok(96)), secs(t0, 240)),
            Check::Error("memory 91 % >= 90 %; disk /data 96 % >= 95 %".into())
        );
        // cpu's warning level has held since 120.
        assert_eq!(
            e.evaluate(&config, &sample(85, 10, Ok(10)), secs(t0, 300)),
            Check::Warning("cpu 85 % >= 80 % for 60 s".into())
        );
        assert_eq!(
            e.evaluate(
                &config,
                &sample(10, 10, Err("disk /data: not a mount point".into())),
                secs(t0, 360)
            ),
            Check::Error("disk /data: not a mount point".into())
        );
        assert_eq!(
            e.evaluate(&config, &sample(10, 10, Ok(10)), secs(t0, 420)),
            Check::Normal
        );
    }

    #[test]
    fn an_unreadable_sample_starts_the_duration_over() {
        let t0 = Instant::now();
        let config = SystemConfig {
            memory: Some(thr(None, Some(90), 60)),
            ..Default::default()
        };
        let mem = |v: Result<u32, String>| Sample {
            memory: Some(v),
            ..Default::default()
        };
        let mut e = Evaluator::default();
        assert_eq!(e.evaluate(&config, &mem(Ok(95)), t0), Check::Normal);
        assert!(matches!(
            e.evaluate(&config, &mem(Err("x".into())), secs(t0, 30)),
            Check::Error(m) if m == "x"
        ));
        assert_eq!(
            e.evaluate(&config, &mem(Ok(95)), secs(t0, 60)),
            Check::Normal
        );
        assert_eq!(
            e.evaluate(&config, &mem(Ok(95)), secs(t0, 119)),
            Check::Normal
        );
        assert_eq!(
            e.evaluate(&config, &mem(Ok(95)), secs(t0, 120)),
            Check::Error("memory 95 % >= 90 % for 60 s".into())
        );
        // A missing sample (None) also starts over.
        let none = Sample::default();
        assert_eq!(e.evaluate(&config, &none, secs(t0, 150)), Check::Normal);
        assert_eq!(
            e.evaluate(&config, &mem(Ok(95)), secs(t0, 180)),
            Check::Normal
        );
    }

    #[test]
    fn percentages() {
        assert_eq!(percent_floor(0, 100), 0);
        assert_eq!(percent_floor(999, 1000), 99);
        assert_eq!(percent_floor(5, 0), 0);
        assert_eq!(percent_floor(200, 100), 100);
        assert_eq!(df_percent(0, 0), 0);
        assert_eq!(df_percent(1, 999), 1);
        assert_eq!(df_percent(50, 50), 50);
        assert_eq!(df_percent(100, 0), 100);
    }

    #[test]
    fn mountinfo_parsing() {
        let text = b"22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n\
            30 22 8:2 / /srv/my\\040data rw - xfs /dev/sdb1 rw\n\
            31 22 0:5 / /weird\\134name rw - tmpfs tmpfs rw\n\
            junk\n";
        assert_eq!(
            mount_points(text),
            vec![
                PathBuf::from("/"),
                PathBuf::from("/srv/my data"),
                PathBuf::from("/weird\\name"),
            ]
        );
        assert_eq!(unescape_octal(b"a\\04"), b"a\\04");
        assert_eq!(unescape_octal(b"\\011x"), b"\tx");
    }

    #[test]
    fn real_memory_sample() {
        let config = SystemConfig {
            memory: Some(thr(None, Some(1), 0)),
            ..Default::default()
        };
        let mut sampler = Sampler {
            sys: System::new(),
            cpu_primed: false,
            evaluator: Evaluator::default(),
        };
        let step = Mutex::new(String::new());
        let sample = sampler.sample(&config, &step);
        let Some(Ok(pct)) = sample.memory else {
            panic!("no memory sample: {sample:?}")
        };
        assert!(pct <= 100, "{pct}");
        assert_eq!(sample.cpu, None);

        let mut probe = SystemProbe::new(config);
        match run(&mut probe) {
            Check::Error(m) => assert!(m.starts_with("memory ") && m.ends_with(" % >= 1 %"), "{m}"),
            other => panic!("expected Error, got {other:?}"),
        }
    }

    #[test]
    fn real_cpu_and_disk_samples() {
        let config = SystemConfig {
            cpu: Some(thr(None, Some(100), 60)),
            disks: vec![disk("/", None, Some(100), 60)],
            ..Default::default()
        };
        let mut sampler = Sampler {
            sys: System::new(),
            cpu_primed: false,
            evaluator: Evaluator::default(),
        };
        let step = Mutex::new(String::new());
        for _ in 0..2 {
            let sample = sampler.sample(&config, &step);
            assert!(matches!(sample.cpu, Some(Ok(p)) if p <= 100), "{sample:?}");
            if is_mount_point(Path::new("/")).unwrap_or(false) {
                assert!(matches!(sample.disks[0], Ok(p) if p <= 100), "{sample:?}");
            } else {
                eprintln!("skipping the disk sample: / is not a mount point here");
            }
        }
        assert_eq!(*step.lock().unwrap(), "disk /");
    }

    #[test]
    fn a_folder_that_is_no_mount_point() {
        let dir = std::env::temp_dir().join(format!("us-system-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.to_string_lossy().into_owned();
        let result = disk_percent(&path);
        let _ = std::fs::remove_dir(&dir);
        assert_eq!(result, Err(format!("disk {path}: not a mount point")));
        assert!(disk_percent("/nonexistent-us-path")
            .unwrap_err()
            .starts_with("disk /nonexistent-us-path: "));

        let mut probe = SystemProbe::new(SystemConfig {
            disks: vec![disk("/nonexistent-us-path", None, Some(90), 0)],
            ..Default::default()
        });
        assert!(
            matches!(run(&mut probe), Check::Error(m) if m.starts_with("disk /nonexistent-us-path: "))
        );
    }

    #[test]
    fn a_hung_sample_is_not_queued_behind() {
        let mut probe = SystemProbe::new(SystemConfig {
            memory: Some(thr(None, Some(100), 0)),
            ..Default::default()
        });
        *probe.step.lock().unwrap() = "disk /nfs".into();
        let held = probe.sampler.clone();
        let guard = held.lock().unwrap();
        assert_eq!(
            run(&mut probe),
            Check::Error("the previous sample has not finished (still reading disk /nfs)".into())
        );
        drop(guard);
        assert_eq!(run(&mut probe), Check::Normal);
    }
}
