//! The disk resource's driver: check (fsck) and mount a filesystem of a
//! shared block device at activation; end the processes that use it and
//! unmount it at deactivation.
//!
//! - Every file, process and mount operation runs in the blocking pool
//!   (`spawn_blocking`), never on the actors' thread; mount(2) and
//!   umount2(2) through `nix`.
//! - Activation refuses, with nothing mounted, when the device is already
//!   mounted anywhere this server can see (its own mount namespace and the
//!   namespace of every process in /proc), when something else is mounted
//!   on the mount point, or when the mount point does not exist (it is
//!   never created: a missing folder is a typo or the wrong server, and a
//!   folder made here would hide that).
//! - fsck (`fsck -t TYPE -p [-f] DEVICE`) runs in a process group of its
//!   own, recorded like a script's, with its output appended to the
//!   resource's log; it is killed at `fsck_timeout`. Exit statuses 0-2
//!   (clean, errors corrected) let the mount go on; 4 and above fail the
//!   activation.
//! - A mount that passes `mount_timeout` fails the activation; should it
//!   complete later, the thread that made it unmounts it at once, so a
//!   failed activation never leaves the filesystem mounted. Failed mounts
//!   are tried again `mount_retry` times, except for refusals a retry
//!   cannot change (the kernel says the device is busy, as ext4's
//!   multi-mount protection does; unknown filesystem type; no such device;
//!   not permitted).
//! - Deactivation ends the processes using the filesystem (SIGTERM, SIGKILL
//!   after `kill_grace`) unless `forced_operation` is `NoOperation`, then
//!   unmounts; both again on failure, `unmount_retry` times, each unmount
//!   bounded by `unmount_timeout`. A filesystem that stays mounted fails the
//!   deactivation (the resource's deactivation ladder takes over).
//! - The mount is written down in the ownership records
//!   ([`crate::resource::owned`]) before it is made and struck off once it
//!   is gone, so that the guardian unmounts it should the daemon die.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::mount::{MntFlags, MsFlags};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

use super::config::{DiskConfig, ForcedOperation, FsckMode, MountOptions};
use super::mounts::{self, DevNum, MountEntry};
use super::users;
use crate::notify::alert_log::now_rfc3339;
use crate::resource::owned;

/// Pause between two mount or unmount attempts.
const RETRY_PAUSE: Duration = Duration::from_secs(1);
const POLL: Duration = Duration::from_millis(20);
/// Where fsck and its per-filesystem checkers live, besides PATH.
const SBIN: &str = "/usr/local/sbin:/usr/sbin:/sbin";

/// Appends a timestamped line to the resource's log (best effort).
fn note(log: &Path, text: &str) {
    if let Some(dir) = log.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    if let Ok(mut f) = OpenOptions::new().create(true).append(true).open(log) {
        let _ = writeln!(f, "{} [disk] {text}", now_rfc3339());
    }
}

/// Runs `f` in the blocking pool.
async fn blocking<T: Send + 'static>(
    what: &str,
    f: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<T, String> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(format!("{what}: the worker thread failed: {e}")))
}

/// What the activation found before it mounts anything.
#[derive(Debug, Clone)]
struct Prepared {
    /// The device with symbolic links resolved (as the mount will show it).
    device: String,
    dev: DevNum,
    /// The mount point as the kernel lists it.
    mount_point: String,
}

/// The checks before a mount (blocking).
fn prepare(cfg: &DiskConfig) -> Result<Prepared, String> {
    let dev = mounts::block_device(&cfg.device)?;
    let device = mounts::canonical(&cfg.device);
    match std::fs::metadata(&cfg.mount_point) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(format!(
                "mount point {} does not exist (create the folder on every server of the group)",
                cfg.mount_point
            ))
        }
        Err(e) => return Err(format!("mount point {}: {e}", cfg.mount_point)),
        Ok(m) if !m.is_dir() => {
            return Err(format!("mount point {} is not a folder", cfg.mount_point))
        }
        Ok(_) => {}
    }
    let mount_point = mounts::canonical(&cfg.mount_point);
    let own = mounts::own_mounts()?;
    if let Some(m) = own.iter().find(|m| m.mount_point == mount_point) {
        return Err(format!(
            "{} ({}) is already mounted on {mount_point}; refusing to mount {} over it",
            m.source, m.fs_type, cfg.device
        ));
    }
    let seen = mounts::mounted_anywhere(dev)?;
    if !seen.is_empty() {
        let places: Vec<String> = seen.iter().map(ToString::to_string).collect();
        return Err(format!(
            "device {} ({dev}) is already mounted on {}; refusing to mount it a second time",
            cfg.device,
            places.join(", ")
        ));
    }
    Ok(Prepared {
        device,
        dev,
        mount_point,
    })
}

/// Activates: checks, fsck, mount. `log`: the resource's log file.
pub async fn activate(cfg: &DiskConfig, log: &Path) -> Result<(), String> {
    let c = cfg.clone();
    let prepared = blocking("disk checks", move || prepare(&c)).await?;
    let options = MountOptions::parse(&cfg.mount_options)
        .map_err(|e| format!("mount options \"{}\": {e}", cfg.mount_options))?;
    owned::record_mount(&prepared.device, &prepared.mount_point, prepared.dev).await;
    if cfg.fsck != FsckMode::Never {
        let (c, l, device) = (cfg.clone(), log.to_path_buf(), prepared.device.clone());
        if let Err(e) = blocking("fsck", move || fsck(&c, &device, &l)).await {
            owned::forget_mount(prepared.dev).await;
            return Err(e);
        }
    }
    let mut attempt = 0;
    loop {
        match mount_within(cfg, &prepared, &options).await {
            Ok(()) => {
                let text = format!(
                    "mounted {} ({}) on {} with {}",
                    prepared.device, cfg.fs_type, prepared.mount_point, cfg.mount_options
                );
                tracing::info!("{text}");
                let l = log.to_path_buf();
                let _ = blocking("log", move || {
                    note(&l, &text);
                    Ok(())
                })
                .await;
                return Ok(());
            }
            Err(MountFailure::TimedOut(e)) => {
                // The record stays: the mount may still complete (its
                // thread then unmounts it at once).
                return Err(e);
            }
            Err(MountFailure::Final(e)) => {
                owned::forget_mount(prepared.dev).await;
                return Err(e);
            }
            Err(MountFailure::Again(e)) if attempt >= cfg.mount_retry => {
                owned::forget_mount(prepared.dev).await;
                return Err(if cfg.mount_retry == 0 {
                    e
                } else {
                    format!("{e} ({} attempts)", attempt + 1)
                });
            }
            Err(MountFailure::Again(e)) => {
                attempt += 1;
                tracing::warn!("{e}; trying again ({attempt} of {})", cfg.mount_retry);
                tokio::time::sleep(RETRY_PAUSE).await;
            }
        }
    }
}

enum MountFailure {
    /// Worth another attempt.
    Again(String),
    /// A retry would meet the same refusal.
    Final(String),
    TimedOut(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Race {
    Running,
    Done,
    /// The caller gave up waiting: a late success must be undone.
    Abandoned,
}

/// One mount, bounded by `mount_timeout`.
async fn mount_within(
    cfg: &DiskConfig,
    p: &Prepared,
    options: &MountOptions,
) -> Result<(), MountFailure> {
    let race = Arc::new(Mutex::new(Race::Running));
    let (r, device, mount_point, fs_type, options) = (
        race.clone(),
        p.device.clone(),
        p.mount_point.clone(),
        cfg.fs_type.clone(),
        options.clone(),
    );
    let mut task = tokio::task::spawn_blocking(move || {
        let result = mount_once(&device, &mount_point, &fs_type, &options);
        let mut state = r.lock().unwrap_or_else(|e| e.into_inner());
        if *state == Race::Abandoned {
            if result.is_ok() {
                match nix::mount::umount2(mount_point.as_str(), MntFlags::empty()) {
                    Ok(()) => tracing::warn!(
                        "{device} was mounted on {mount_point} after the activation had given up; unmounted it again"
                    ),
                    Err(e) => tracing::error!(
                        "{device} was mounted on {mount_point} after the activation had given up, and cannot be unmounted: {e}"
                    ),
                }
            }
        } else {
            *state = Race::Done;
        }
        result
    });
    let limit = Duration::from_secs(cfg.mount_timeout.into());
    let joined = match tokio::time::timeout(limit, &mut task).await {
        Ok(joined) => joined,
        Err(_) => {
            // Finished just now, or abandoned: decided under the lock the
            // mounting thread takes too.
            let finished = {
                let mut state = race.lock().unwrap_or_else(|e| e.into_inner());
                if *state != Race::Done {
                    *state = Race::Abandoned;
                }
                *state == Race::Done
            };
            if !finished {
                return Err(MountFailure::TimedOut(format!(
                    "mounting {} on {} did not finish within {} s",
                    p.device, p.mount_point, cfg.mount_timeout
                )));
            }
            task.await
        }
    };
    let what = format!("cannot mount {} on {}", p.device, p.mount_point);
    match joined {
        Err(e) => Err(MountFailure::Again(format!("{what}: {e}"))),
        Ok(Ok(())) => Ok(()),
        Ok(Err(errno)) => {
            let why = describe_mount_error(errno, &cfg.fs_type);
            if matches!(
                errno,
                Errno::EBUSY
                    | Errno::ENODEV
                    | Errno::ENOTBLK
                    | Errno::ENOENT
                    | Errno::ENOTDIR
                    | Errno::EPERM
                    | Errno::EACCES
            ) {
                Err(MountFailure::Final(format!("{what}: {why}")))
            } else {
                Err(MountFailure::Again(format!("{what}: {why}")))
            }
        }
    }
}

fn describe_mount_error(errno: Errno, fs_type: &str) -> String {
    match errno {
        Errno::EBUSY => "the device is in use (mounted or opened elsewhere; with ext4 multi-mount protection: active on another server)".into(),
        Errno::ENODEV => format!("this kernel does not know filesystem type {fs_type}"),
        Errno::EINVAL => format!("no valid {fs_type} filesystem on the device, or an option it does not take (see the kernel log)"),
        Errno::EUCLEAN => "the filesystem is corrupted (run fsck by hand)".into(),
        Errno::EPERM | Errno::EACCES => "not permitted (the daemon must run as root)".into(),
        other => other.desc().to_string(),
    }
}

fn ms_flags(o: &MountOptions) -> MsFlags {
    let mut f = MsFlags::empty();
    for (on, flag) in [
        (o.read_only, MsFlags::MS_RDONLY),
        (o.nosuid, MsFlags::MS_NOSUID),
        (o.nodev, MsFlags::MS_NODEV),
        (o.noexec, MsFlags::MS_NOEXEC),
        (o.synchronous, MsFlags::MS_SYNCHRONOUS),
        (o.dirsync, MsFlags::MS_DIRSYNC),
        (o.noatime, MsFlags::MS_NOATIME),
        (o.nodiratime, MsFlags::MS_NODIRATIME),
        (o.relatime, MsFlags::MS_RELATIME),
        (o.strictatime, MsFlags::MS_STRICTATIME),
        (o.lazytime, MsFlags::MS_LAZYTIME),
        (o.silent, MsFlags::MS_SILENT),
    ] {
        if on {
            f |= flag;
        }
    }
    f
}

/// mount(2), blocking.
fn mount_once(
    device: &str,
    mount_point: &str,
    fs_type: &str,
    options: &MountOptions,
) -> Result<(), Errno> {
    let data = (!options.data.is_empty()).then_some(options.data.as_str());
    nix::mount::mount(
        Some(device),
        mount_point,
        Some(fs_type),
        ms_flags(options),
        data,
    )
}

/// PATH for fsck: the daemon's, then the sbin folders.
fn fsck_path() -> String {
    match std::env::var("PATH") {
        Ok(p) if !p.is_empty() => format!("{p}:{SBIN}"),
        _ => format!("/usr/local/bin:/usr/bin:/bin:{SBIN}"),
    }
}

/// The fsck command line of a configuration (without the program).
pub fn fsck_args(cfg: &DiskConfig, device: &str) -> Vec<String> {
    let mut args = vec!["-t".to_string(), cfg.fs_type.clone(), "-p".into()];
    if cfg.fsck == FsckMode::Always {
        args.push("-f".into());
    }
    args.push(device.into());
    args
}

/// Runs fsck (blocking) with its output appended to `log`; kills it at
/// `fsck_timeout`.
fn fsck(cfg: &DiskConfig, device: &str, log: &Path) -> Result<(), String> {
    let args = fsck_args(cfg, device);
    let line = format!("fsck {}", args.join(" "));
    note(log, &format!("running {line}"));
    let out = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(|e| format!("cannot open the log {}: {e}", log.display()))?;
    let err = out
        .try_clone()
        .map_err(|e| format!("cannot open the log {}: {e}", log.display()))?;
    let mut child = Command::new("fsck")
        .args(&args)
        .env("PATH", fsck_path())
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .process_group(0)
        .spawn()
        .map_err(|e| format!("cannot run fsck: {e} (Debian packages util-linux, e2fsprogs)"))?;
    let pgid = child.id();
    owned::record_group_now(pgid);
    let deadline = Instant::now() + Duration::from_secs(cfg.fsck_timeout.into());
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() >= deadline => {
                let _ = killpg(Pid::from_raw(pgid as i32), Signal::SIGKILL);
                let _ = child.wait();
                break None;
            }
            Ok(None) => std::thread::sleep(POLL),
            Err(e) => {
                let _ = killpg(Pid::from_raw(pgid as i32), Signal::SIGKILL);
                let _ = child.wait();
                owned::group_reaped_now(pgid);
                return Err(format!("waiting for fsck: {e}"));
            }
        }
    };
    owned::group_reaped_now(pgid);
    let Some(status) = status else {
        note(log, &format!("{line}: killed after {} s", cfg.fsck_timeout));
        return Err(format!(
            "{line} did not finish within {} s (fsck_timeout); killed",
            cfg.fsck_timeout
        ));
    };
    let shown = crate::resource::exec::driver::describe_status(status);
    note(log, &format!("{line}: {shown}"));
    match status.code() {
        Some(0) => Ok(()),
        Some(1) | Some(2) => {
            tracing::warn!("{line}: errors were found and corrected ({shown})");
            Ok(())
        }
        Some(4) => Err(format!(
            "{line} found errors it could not correct ({shown}); repair the filesystem by hand (its output is in {})",
            log.display()
        )),
        _ => Err(format!(
            "{line} failed ({shown}); its output is in {}",
            log.display()
        )),
    }
}

/// What one unmount attempt found or did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unmounted {
    /// Nothing of the device was mounted on the mount point.
    NotMounted,
    /// Unmounted; the processes ended first, if any (for the log).
    Done(users::Ended),
}

/// Our mounts: the device's filesystem on the mount point, in this mount
/// namespace.
fn ours(mount_point: &str, dev: Option<DevNum>, device: &str) -> Result<Vec<MountEntry>, String> {
    Ok(mounts::own_mounts()?
        .into_iter()
        .filter(|m| m.mount_point == mount_point)
        .filter(|m| match dev {
            Some(dev) => mounts::is_of_device(m, dev),
            // The device node is gone: its mount still names it.
            None => m.source == device,
        })
        .collect())
}

/// One unmount attempt (blocking): ends the processes using the
/// filesystem when `kill`, then unmounts it (again while it is stacked on
/// the mount point). `dev`: the device's number if known.
pub fn unmount_once(
    device: &str,
    dev: Option<DevNum>,
    mount_point: &str,
    kill: bool,
    grace: Duration,
) -> Result<Unmounted, String> {
    let mut found = ours(mount_point, dev, device)?;
    if found.is_empty() {
        return Ok(Unmounted::NotMounted);
    }
    let mut ended = users::Ended::default();
    // Bounded: a filesystem mounted more than a few times on the same
    // folder is not ours to unwind.
    for _ in 0..8 {
        let Some(top) = found.last().cloned() else {
            return Ok(Unmounted::Done(ended));
        };
        if kill {
            let e = users::end_users(top.dev, grace);
            ended.terminated.extend(e.terminated);
            ended.killed.extend(e.killed);
            ended.left = e.left;
        }
        match nix::mount::umount2(mount_point, MntFlags::empty()) {
            Ok(()) | Err(Errno::EINVAL) => {}
            Err(Errno::EBUSY) => {
                let mut why = Vec::new();
                let users = users::users_of(top.dev);
                if !users.is_empty() {
                    why.push(format!(
                        "used by process{} {}",
                        if users.len() == 1 { "" } else { "es" },
                        users
                            .iter()
                            .map(u32::to_string)
                            .collect::<Vec<_>>()
                            .join(" ")
                    ));
                }
                let all = mounts::own_mounts().unwrap_or_default();
                let below: Vec<String> = mounts::at_or_below(&all, mount_point)
                    .iter()
                    .filter(|m| m.mount_point != mount_point)
                    .map(|m| m.mount_point.clone())
                    .collect();
                if !below.is_empty() {
                    why.push(format!("mounted below it: {}", below.join(" ")));
                }
                if why.is_empty() {
                    why.push("busy".into());
                }
                return Err(format!("cannot unmount {mount_point}: {}", why.join("; ")));
            }
            Err(e) => return Err(format!("cannot unmount {mount_point}: {}", e.desc())),
        }
        found = ours(mount_point, dev, device)?;
        if found.is_empty() {
            return Ok(Unmounted::Done(ended));
        }
    }
    Err(format!(
        "{device} is still mounted on {mount_point} after 8 unmounts"
    ))
}

/// The device's number, or `None` when its node is gone.
fn device_number(device: &str) -> Option<DevNum> {
    mounts::block_device(device).ok()
}

/// Deactivates: ends the filesystem's users and unmounts it, with
/// retries. A filesystem of another device on the mount point is left
/// alone. `log`: the resource's log file.
pub async fn deactivate(cfg: &DiskConfig, log: &Path) -> Result<(), String> {
    let c = cfg.clone();
    let (device, dev, mount_point) = blocking("disk checks", move || {
        Ok((
            mounts::canonical(&c.device),
            device_number(&c.device),
            mounts::canonical(&c.mount_point),
        ))
    })
    .await?;
    let kill = cfg.forced_operation == ForcedOperation::Kill;
    let grace = Duration::from_secs(cfg.kill_grace.into());
    let limit = Duration::from_secs(cfg.unmount_timeout.into());
    let mut attempt = 0;
    loop {
        let (d, m, l) = (device.clone(), mount_point.clone(), log.to_path_buf());
        let task = tokio::task::spawn_blocking(move || {
            let r = unmount_once(&d, dev, &m, kill, grace);
            if let Ok(Unmounted::Done(ended)) = &r {
                if !ended.is_empty() {
                    note(&l, &format!("processes using {m}: {}", ended.describe()));
                }
                note(&l, &format!("unmounted {d} from {m}"));
            }
            r
        });
        let result = match tokio::time::timeout(limit, task).await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => Err(format!("unmount: the worker thread failed: {e}")),
            Err(_) => Err(format!(
                "unmounting {mount_point} did not finish within {} s",
                cfg.unmount_timeout
            )),
        };
        match result {
            Ok(outcome) => {
                match &outcome {
                    Unmounted::NotMounted => {
                        tracing::info!("{device} was not mounted on {mount_point}: nothing to do")
                    }
                    Unmounted::Done(ended) => {
                        if !ended.is_empty() {
                            tracing::warn!("processes using {mount_point}: {}", ended.describe());
                        }
                        tracing::info!("unmounted {device} from {mount_point}");
                    }
                }
                if let Some(dev) = dev {
                    owned::forget_mount(dev).await;
                }
                return Ok(());
            }
            Err(e) if attempt >= cfg.unmount_retry => {
                return Err(if cfg.unmount_retry == 0 {
                    e
                } else {
                    format!("{e} ({} attempts)", attempt + 1)
                });
            }
            Err(e) => {
                attempt += 1;
                tracing::warn!("{e}; trying again ({attempt} of {})", cfg.unmount_retry);
                tokio::time::sleep(RETRY_PAUSE).await;
            }
        }
    }
}

/// For the guardian and the startup cleanup (blocking): unmounts a
/// recorded filesystem, ending its users first; three attempts. `Ok(true)`:
/// unmounted, `Ok(false)`: it was no longer mounted there.
pub fn release(
    device: &str,
    dev: DevNum,
    mount_point: &str,
    grace: Duration,
) -> Result<bool, String> {
    let mut last = String::new();
    for attempt in 0..3 {
        if attempt > 0 {
            std::thread::sleep(Duration::from_millis(200));
        }
        match unmount_once(device, Some(dev), mount_point, true, grace) {
            Ok(Unmounted::NotMounted) => return Ok(false),
            Ok(Unmounted::Done(_)) => return Ok(true),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// The resource's log file, as exec resources have it.
pub fn log_file(log_dir: &Path, resource: &str) -> PathBuf {
    log_dir.join(format!("{resource}.log"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fsck_command_lines() {
        let mut c = DiskConfig::new("/dev/sdb2", "/mnt/sdb2", "ext3");
        assert_eq!(
            fsck_args(&c, "/dev/sdb2"),
            ["-t", "ext3", "-p", "/dev/sdb2"]
        );
        c.fsck = FsckMode::Always;
        assert_eq!(
            fsck_args(&c, "/dev/sdb2"),
            ["-t", "ext3", "-p", "-f", "/dev/sdb2"]
        );
    }

    #[test]
    fn options_become_flags() {
        let o = MountOptions::parse("ro,noatime,nodev,data=ordered").unwrap();
        assert_eq!(
            ms_flags(&o),
            MsFlags::MS_RDONLY | MsFlags::MS_NOATIME | MsFlags::MS_NODEV
        );
        assert_eq!(
            ms_flags(&MountOptions::parse("rw").unwrap()),
            MsFlags::empty()
        );
    }

    #[test]
    fn refusals_come_before_any_mount() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let log = std::env::temp_dir().join(format!("us-disk-{}.log", std::process::id()));
        let missing = DiskConfig::new("/nonexistent/understudy-dev", "/mnt", "ext4");
        let e = rt.block_on(activate(&missing, &log)).unwrap_err();
        assert!(e.contains("does not exist"), "{e}");
        let file = DiskConfig::new("/proc/self/mountinfo", "/mnt", "ext4");
        let e = rt.block_on(activate(&file, &log)).unwrap_err();
        assert!(e.contains("not a block device"), "{e}");
        // Nothing of a device that is not there is mounted: nothing to do.
        assert_eq!(rt.block_on(deactivate(&missing, &log)), Ok(()));
        let _ = std::fs::remove_file(&log);
    }
}
