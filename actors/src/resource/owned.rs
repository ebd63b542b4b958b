//! Ownership records: what the daemon holds on this machine, written down so
//! that someone else can take it away when the daemon dies.
//!
//! A dead daemon must leave nothing behind: no floating IP still answering
//! (two hosts would answer for it), no process group still running and no
//! filesystem of a shared disk still mounted (two hosts writing to one
//! filesystem destroy it). The
//! daemon therefore keeps one small file per thing it holds in a record
//! folder (`<state-dir>/owned`), and [`release`] (used by the guardian once
//! the daemon has died, and by the daemon at startup for leftovers of an
//! earlier run) removes whatever is recorded there.
//!
//! - The fip driver records an address *before* adding it and strikes it off
//!   after removing it.
//! - The exec driver records every process group it starts and strikes it
//!   off once the group is empty (see [`group_reaped`]); the disk driver
//!   does the same for fsck.
//! - The disk driver records a filesystem *before* mounting it and strikes
//!   it off after unmounting it.
//! - The ocf driver records an agent instance (its file and environment)
//!   *before* its start action and strikes it off after a stop that
//!   succeeded; releasing it runs the agent's stop action, first of all
//!   (the agent may hold addresses, processes and mounts of its own).
//!
//! The folder is process-global and set once by the daemon ([`init`]); until
//! then every recording call is a no-op, so the drivers work unchanged in
//! unit tests. Records are written atomically (temporary file, fsync,
//! rename); a failure to write one is logged, never fatal: the resource is
//! more important than its record.
//!
//! [`init`] takes an exclusive lock on `<folder>/.lock` for the daemon's
//! lifetime (close-on-exec, so scripts do not inherit it). [`release`] takes
//! the same lock, so it never touches the records of a daemon that is alive.
//!
//! Records carry the boot id: after a reboot every recorded address and
//! process is gone by itself and a recorded pid may belong to anyone, so
//! records of another boot are dropped without acting on them. A process
//! group record also carries its leader's start time, so that a group whose
//! number was reused is never signalled.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::net::Ipv4Addr;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

use super::disk::mounts::DevNum;

/// How long process groups get between SIGTERM and SIGKILL in [`release`].
pub const RELEASE_GRACE: Duration = Duration::from_secs(2);
/// How long [`release`] waits for SIGKILLed groups to disappear.
const KILL_WAIT: Duration = Duration::from_secs(1);
/// How long [`release`] waits for the lock of a daemon that has just died
/// (a script forked but not yet exec'd may still hold it for a moment).
const LOCK_WAIT: Duration = Duration::from_secs(2);
const POLL: Duration = Duration::from_millis(20);
const LOCK_FILE: &str = ".lock";

/// One record file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Record {
    Address {
        /// `ip/prefix`
        address: String,
        interface: String,
        boot_id: String,
        /// The network namespace it was added in (`net:[inode]`).
        netns: String,
    },
    Group {
        pgid: u32,
        /// Start time of the group's leader, clock ticks after boot
        /// (`/proc/<pid>/stat` field 22).
        start_ticks: u64,
        boot_id: String,
    },
    Ocf {
        /// `provider:type instance`, for messages.
        label: String,
        /// The agent's file.
        path: String,
        /// Its OCF environment (`OCF_ROOT`, `OCF_RESKEY_*`, ...).
        env: Vec<(String, String)>,
        /// How long its stop action may take.
        stop_timeout_secs: u32,
        boot_id: String,
        /// The network namespace it was started in (`net:[inode]`).
        netns: String,
    },
    Mount {
        /// The block device, symbolic links resolved.
        device: String,
        /// `major:minor` of the device.
        dev: String,
        mount_point: String,
        boot_id: String,
        /// The mount namespace it was mounted in (`mnt:[inode]`).
        mntns: String,
    },
}

struct State {
    dir: PathBuf,
    /// Held for the daemon's lifetime.
    _lock: Flock<File>,
    /// Recorded process groups of this daemon and their leaders' start times.
    groups: Mutex<BTreeMap<u32, u64>>,
}

static STATE: OnceLock<State> = OnceLock::new();

/// Sets the record folder of this process (the daemon) and locks it.
/// Fails when another process holds the folder. Calling it again with the
/// same folder is fine; with another one it fails.
pub fn init(dir: PathBuf) -> Result<(), String> {
    if let Some(state) = STATE.get() {
        return if state.dir == dir {
            Ok(())
        } else {
            Err(format!(
                "ownership records are already kept in {}",
                state.dir.display()
            ))
        };
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let lock = match try_lock(&dir)? {
        Some(lock) => lock,
        None => {
            return Err(format!(
                "{} is in use by another understudy daemon (same state directory)",
                dir.display()
            ))
        }
    };
    let _ = STATE.set(State {
        dir,
        _lock: lock,
        groups: Mutex::new(BTreeMap::new()),
    });
    Ok(())
}

/// The record folder set by [`init`], if any.
pub fn folder() -> Option<&'static Path> {
    STATE.get().map(|s| s.dir.as_path())
}

/// `Ok(None)` when someone else holds the lock.
fn try_lock(dir: &Path) -> Result<Option<Flock<File>>, String> {
    let path = dir.join(LOCK_FILE);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&path)
        .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(lock) => Ok(Some(lock)),
        Err((_, Errno::EWOULDBLOCK)) => Ok(None),
        Err((_, e)) => Err(format!("cannot lock {}: {e}", path.display())),
    }
}

// ---------------------------------------------------------------------------
// recording (the daemon's drivers)

/// Records an address before it is added. No-op before [`init`].
pub async fn record_address(ip: Ipv4Addr, prefix: u8, interface: &str) {
    let interface = interface.to_string();
    off_thread(move |dir| {
        let record = Record::Address {
            address: format!("{ip}/{prefix}"),
            interface,
            boot_id: boot_id(),
            netns: netns(),
        };
        write_record(dir, &address_file(ip, prefix), &record);
    })
    .await;
}

/// Strikes off an address once it has been removed. No-op before [`init`].
pub async fn forget_address(ip: Ipv4Addr, prefix: u8) {
    off_thread(move |dir| remove_record(dir, &address_file(ip, prefix))).await;
}

/// Records a process group just started (its leader's pid is its id).
/// No-op before [`init`].
pub async fn record_group(pgid: u32) {
    off_thread(move |dir| {
        let Some(state) = STATE.get() else { return };
        // The leader is our unreaped child: its stat is there even if it
        // has already exited.
        let Some(start_ticks) = proc_stat(pgid).map(|s| s.start_ticks) else {
            tracing::warn!("process group {pgid}: no start time found; not recorded");
            return;
        };
        let record = Record::Group {
            pgid,
            start_ticks,
            boot_id: boot_id(),
        };
        write_record(dir, &group_file(pgid), &record);
        if let Ok(mut groups) = state.groups.lock() {
            groups.insert(pgid, start_ticks);
        }
    })
    .await;
}

/// [`record_group`] for a caller already on a blocking thread.
pub fn record_group_now(pgid: u32) {
    let Some(state) = STATE.get() else { return };
    let Some(start_ticks) = proc_stat(pgid).map(|s| s.start_ticks) else {
        tracing::warn!("process group {pgid}: no start time found; not recorded");
        return;
    };
    let record = Record::Group {
        pgid,
        start_ticks,
        boot_id: boot_id(),
    };
    write_record(&state.dir, &group_file(pgid), &record);
    if let Ok(mut groups) = state.groups.lock() {
        groups.insert(pgid, start_ticks);
    }
}

/// [`group_reaped`] for a caller already on a blocking thread.
pub fn group_reaped_now(pgid: u32) {
    let Some(state) = STATE.get() else { return };
    if let Ok(mut groups) = state.groups.lock() {
        if let Some(&ticks) = groups.get(&pgid) {
            if group_now(pgid, ticks) != GroupNow::Running {
                groups.remove(&pgid);
                remove_record(&state.dir, &group_file(pgid));
            }
        }
    }
}

/// Records a filesystem before it is mounted. No-op before [`init`].
pub async fn record_mount(device: &str, mount_point: &str, dev: DevNum) {
    let (device, mount_point) = (device.to_string(), mount_point.to_string());
    off_thread(move |dir| {
        let record = Record::Mount {
            device,
            dev: dev.to_string(),
            mount_point,
            boot_id: boot_id(),
            mntns: mntns(),
        };
        write_record(dir, &mount_file(dev), &record);
    })
    .await;
}

/// Records an OCF agent instance before its start action. No-op before
/// [`init`].
pub async fn record_ocf(
    instance: &str,
    label: String,
    path: String,
    env: Vec<(String, String)>,
    stop_timeout_secs: u32,
) {
    let file = ocf_file(instance);
    off_thread(move |dir| {
        let record = Record::Ocf {
            label,
            path,
            env,
            stop_timeout_secs,
            boot_id: boot_id(),
            netns: netns(),
        };
        write_record(dir, &file, &record);
    })
    .await;
}

/// Strikes off an OCF agent instance once its stop action succeeded.
/// No-op before [`init`].
pub async fn forget_ocf(instance: &str) {
    let file = ocf_file(instance);
    off_thread(move |dir| remove_record(dir, &file)).await;
}

/// Strikes off a filesystem once it has been unmounted. No-op before
/// [`init`].
pub async fn forget_mount(dev: DevNum) {
    off_thread(move |dir| remove_record(dir, &mount_file(dev))).await;
}

/// Called when the leader of a recorded group has been reaped: strikes the
/// group off when nothing of it runs any more. Members started in the
/// background may outlive the leader; such a group stays on record, and
/// every later call looks at it again (and at every other group still on
/// record), so it is struck off eventually. No-op before [`init`].
pub async fn group_reaped(pgid: u32) {
    off_thread(move |dir| {
        let Some(state) = STATE.get() else { return };
        let Ok(mut groups) = state.groups.lock() else {
            return;
        };
        if !groups.contains_key(&pgid) {
            return;
        }
        groups.retain(|&pgid, &mut ticks| {
            if group_now(pgid, ticks) == GroupNow::Running {
                return true;
            }
            remove_record(dir, &group_file(pgid));
            false
        });
    })
    .await;
}

/// Runs `f` with the record folder on a blocking thread (file writes never
/// run on the actors' thread), or inline when there is no tokio runtime.
async fn off_thread(f: impl FnOnce(&Path) + Send + 'static) {
    let Some(state) = STATE.get() else { return };
    let dir: &'static Path = state.dir.as_path();
    if tokio::runtime::Handle::try_current().is_ok() {
        if let Err(e) = tokio::task::spawn_blocking(move || f(dir)).await {
            tracing::warn!("ownership record: {e}");
        }
    } else {
        f(dir);
    }
}

fn address_file(ip: Ipv4Addr, prefix: u8) -> String {
    format!("addr-{ip}_{prefix}")
}

/// One file per instance; bytes other than letters, digits, `-` and `_`
/// written as `%XX`, so no name can leave the folder.
fn ocf_file(instance: &str) -> String {
    let mut name = String::from("ocf-");
    for b in instance.bytes() {
        if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
            name.push(b as char);
        } else {
            name.push_str(&format!("%{b:02X}"));
        }
    }
    name
}

fn group_file(pgid: u32) -> String {
    format!("pgid-{pgid}")
}

fn mount_file(dev: DevNum) -> String {
    format!("mount-{}_{}", dev.major, dev.minor)
}

fn write_record(dir: &Path, name: &str, record: &Record) {
    let result = serde_json::to_vec(record)
        .map_err(io::Error::other)
        .and_then(|bytes| write_atomic(dir, name, &bytes));
    if let Err(e) = result {
        tracing::warn!(
            "cannot write ownership record {}/{name}: {e}",
            dir.display()
        );
    }
}

fn remove_record(dir: &Path, name: &str) {
    match fs::remove_file(dir.join(name)) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => tracing::warn!(
            "cannot remove ownership record {}/{name}: {e}",
            dir.display()
        ),
    }
}

/// Temporary file, fsync, rename: a reader sees the whole record or none.
fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> io::Result<()> {
    crate::atomic_file::write_atomically(&dir.join(name), bytes, 0o600)
}

// ---------------------------------------------------------------------------
// releasing (the guardian, the daemon at startup)

/// What [`release`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Released {
    /// Addresses removed, as `ip/prefix on interface`.
    pub addresses: Vec<String>,
    /// Process groups ended.
    pub groups: Vec<u32>,
    /// Filesystems unmounted, as `DEVICE on MOUNT_POINT`.
    pub mounts: Vec<String>,
    /// OCF agent instances stopped, as `provider:type instance`.
    pub agents: Vec<String>,
    /// What was done and what was found, in order, one line each.
    pub lines: Vec<String>,
    /// What could not be done; those records are kept for the next attempt.
    pub errors: Vec<String>,
}

/// [`release`] as text: one line per action, errors prefixed `error: `.
pub fn release_all(dir: &Path) -> Vec<String> {
    let r = release(dir);
    r.lines
        .into_iter()
        .chain(r.errors.into_iter().map(|e| format!("error: {e}")))
        .collect()
}

/// Takes away everything recorded in `dir`: first every recorded address
/// still present (they matter most: another server may be about to take
/// them over), then every recorded process group still running (SIGTERM,
/// SIGKILL after [`RELEASE_GRACE`]), then every recorded filesystem still
/// mounted (the processes still using it ended the same way first; three
/// unmount attempts). Records acted on, or found stale, are
/// removed. Blocking; needs no runtime (netlink runs on a thread of its
/// own), so it can be called from any process and any thread. Refuses to
/// touch the folder of a daemon that is alive (its lock is held).
pub fn release(dir: &Path) -> Released {
    release_with(dir, RELEASE_GRACE, |_| {})
}

/// Like [`release`], calling `after` once the addresses are gone and the
/// process groups have ended (the guardian tells the other servers there:
/// they start the groups at once on that notice, so nothing of the old
/// copy may still run, not even a process finishing its SIGTERM). `grace`:
/// how long processes get between SIGTERM and SIGKILL (at most
/// [`RELEASE_GRACE`]; less when the others may take over sooner).
pub fn release_with(dir: &Path, grace: Duration, after: impl FnOnce(&Released)) -> Released {
    let mut out = Released::default();
    if !dir.is_dir() {
        return out;
    }
    let _lock = match STATE.get().filter(|s| s.dir == dir) {
        // This process is the daemon holding the folder (startup cleanup).
        Some(_) => None,
        None => match lock_within(dir, LOCK_WAIT) {
            Ok(lock) => Some(lock),
            Err(e) => {
                out.errors.push(e);
                return out;
            }
        },
    };
    let (agents, addresses, groups, mounts) = read_records(dir, &mut out);
    release_agents(dir, agents, &mut out);
    release_addresses(dir, addresses, &mut out);
    release_groups(dir, groups, grace.min(RELEASE_GRACE), &mut out);
    release_mounts(dir, mounts, grace.min(RELEASE_GRACE), &mut out);
    after(&out);
    out
}

fn lock_within(dir: &Path, wait: Duration) -> Result<Flock<File>, String> {
    let end = Instant::now() + wait;
    loop {
        if let Some(lock) = try_lock(dir)? {
            return Ok(lock);
        }
        if Instant::now() >= end {
            return Err(format!(
                "the records in {} belong to a daemon that is still running; nothing released",
                dir.display()
            ));
        }
        std::thread::sleep(POLL);
    }
}

/// An address record found in the folder (`file` is the record's name).
#[derive(Debug, Clone)]
struct FoundAddress {
    file: String,
    ip: Ipv4Addr,
    prefix: u8,
    interface: String,
}

/// A process group record found in the folder.
#[derive(Debug, Clone)]
struct FoundGroup {
    file: String,
    pgid: u32,
    start_ticks: u64,
}

/// An OCF agent instance record found in the folder.
#[derive(Debug, Clone)]
struct FoundAgent {
    file: String,
    label: String,
    path: String,
    env: Vec<(String, String)>,
    stop_timeout: Duration,
}

/// A filesystem record found in the folder.
#[derive(Debug, Clone)]
struct FoundMount {
    file: String,
    device: String,
    dev: DevNum,
    mount_point: String,
}

impl FoundGroup {
    fn running(&self) -> bool {
        group_now(self.pgid, self.start_ticks) == GroupNow::Running
    }
}

/// The address, group and filesystem records of the folder (by file
/// name). Unreadable records are reported and removed: nothing can be done
/// with them.
#[allow(clippy::type_complexity)]
fn read_records(
    dir: &Path,
    out: &mut Released,
) -> (
    Vec<FoundAgent>,
    Vec<FoundAddress>,
    Vec<FoundGroup>,
    Vec<FoundMount>,
) {
    let mut agents = Vec::new();
    let mut addresses = Vec::new();
    let mut groups = Vec::new();
    let mut mounts = Vec::new();
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            out.errors
                .push(format!("cannot read {}: {e}", dir.display()));
            return (agents, addresses, groups, mounts);
        }
    };
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort();
    let (this_boot, this_netns, this_mntns) = (boot_id(), netns(), mntns());
    for name in names {
        if name.starts_with('.') {
            // The lock, or a temporary file of a write cut short.
            if name.ends_with(".tmp") {
                let _ = fs::remove_file(dir.join(&name));
            }
            continue;
        }
        let record = fs::read(dir.join(&name))
            .map_err(|e| e.to_string())
            .and_then(|b| serde_json::from_slice::<Record>(&b).map_err(|e| e.to_string()));
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                out.lines
                    .push(format!("unreadable record {name} dropped: {e}"));
                remove_record(dir, &name);
                continue;
            }
        };
        let boot = match &record {
            Record::Address { boot_id, .. }
            | Record::Group { boot_id, .. }
            | Record::Mount { boot_id, .. }
            | Record::Ocf { boot_id, .. } => boot_id,
        };
        if !same(boot, &this_boot) {
            out.lines
                .push(format!("record {name} is from before a reboot; dropped"));
            remove_record(dir, &name);
            continue;
        }
        match record {
            Record::Address {
                address,
                interface,
                netns,
                ..
            } => {
                if !same(&netns, &this_netns) {
                    out.errors.push(format!(
                        "{address} on {interface} was added in network namespace {netns}, not in this one ({this_netns}); left alone"
                    ));
                    continue;
                }
                match super::fip::config::parse_cidr(&address) {
                    Some((ip, prefix)) => addresses.push(FoundAddress {
                        file: name,
                        ip,
                        prefix,
                        interface,
                    }),
                    None => {
                        out.lines
                            .push(format!("record {name} holds no address; dropped"));
                        remove_record(dir, &name);
                    }
                }
            }
            Record::Ocf {
                label,
                path,
                env,
                stop_timeout_secs,
                netns,
                ..
            } => {
                if !same(&netns, &this_netns) {
                    out.errors.push(format!(
                        "ocf:{label} was started in network namespace {netns}, not in this one ({this_netns}); left alone"
                    ));
                    continue;
                }
                agents.push(FoundAgent {
                    file: name,
                    label,
                    path,
                    env,
                    stop_timeout: Duration::from_secs(stop_timeout_secs.clamp(1, 3600).into()),
                });
            }
            Record::Group {
                pgid, start_ticks, ..
            } => groups.push(FoundGroup {
                file: name,
                pgid,
                start_ticks,
            }),
            Record::Mount {
                device,
                dev,
                mount_point,
                mntns,
                ..
            } => {
                if !same(&mntns, &this_mntns) {
                    out.errors.push(format!(
                        "{device} on {mount_point} was mounted in mount namespace {mntns}, not in this one ({this_mntns}); left alone"
                    ));
                    continue;
                }
                match DevNum::parse(&dev) {
                    Some(dev) => mounts.push(FoundMount {
                        file: name,
                        device,
                        dev,
                        mount_point,
                    }),
                    None => {
                        out.lines
                            .push(format!("record {name} holds no device number; dropped"));
                        remove_record(dir, &name);
                    }
                }
            }
        }
    }
    (agents, addresses, groups, mounts)
}

/// Equal, or one side unknown (then there is nothing to tell them apart).
fn same(a: &str, b: &str) -> bool {
    a.is_empty() || b.is_empty() || a == b
}

/// Runs the stop action of every recorded OCF agent instance (blocking, a
/// child process each, killed with its process group at the timeout);
/// `OCF_SUCCESS` or `OCF_NOT_RUNNING` strikes the record off, anything else
/// keeps it for the next attempt.
fn release_agents(dir: &Path, agents: Vec<FoundAgent>, out: &mut Released) {
    use std::os::unix::process::CommandExt;
    use understudy_brain::resource::ocf::{outcome, OcfRc, Outcome};
    for a in agents {
        let mut env = a.env.clone();
        env.push((
            "OCF_RESKEY_CRM_meta_timeout".into(),
            a.stop_timeout.as_millis().to_string(),
        ));
        let child = std::process::Command::new(&a.path)
            .arg("stop")
            .envs(env)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .process_group(0)
            .spawn();
        let mut child = match child {
            Ok(c) => c,
            Err(e) => {
                out.errors
                    .push(format!("ocf:{}: cannot run {} stop: {e}", a.label, a.path));
                continue;
            }
        };
        let end = Instant::now() + a.stop_timeout;
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break Some(status),
                Ok(None) if Instant::now() < end => std::thread::sleep(POLL),
                _ => {
                    let _ = killpg(Pid::from_raw(child.id() as i32), Signal::SIGKILL);
                    let _ = child.wait();
                    break None;
                }
            }
        };
        match status.and_then(|s| s.code()).map(OcfRc::from_code) {
            Some(rc) if outcome("stop", rc) == Outcome::Done => {
                out.lines.push(format!("stopped ocf:{}", a.label));
                out.agents.push(a.label.clone());
                remove_record(dir, &a.file);
            }
            Some(rc) => out
                .errors
                .push(format!("ocf:{} stop failed: {}", a.label, rc.describe())),
            None => out.errors.push(format!(
                "ocf:{} stop gave no answer within {} s; its process group was killed",
                a.label,
                a.stop_timeout.as_secs()
            )),
        }
    }
}

/// What one release found, written down: `Ok(true)`, it took the thing
/// away (`lines[0]`, and `what` in the list `pick` chooses); `Ok(false)`,
/// the thing was gone already (`lines[1]`); both strike the record off. An
/// error keeps the record for the next attempt.
#[allow(clippy::too_many_arguments)]
fn settle(
    dir: &Path,
    file: &str,
    result: Result<bool, String>,
    out: &mut Released,
    pick: fn(&mut Released) -> &mut Vec<String>,
    what: String,
    lines: [String; 2],
) {
    let [done, gone] = lines;
    match result {
        Ok(true) => {
            out.lines.push(done);
            pick(out).push(what);
            remove_record(dir, file);
        }
        Ok(false) => {
            out.lines.push(gone);
            remove_record(dir, file);
        }
        Err(e) => out.errors.push(e),
    }
}

fn release_addresses(dir: &Path, addresses: Vec<FoundAddress>, out: &mut Released) {
    if addresses.is_empty() {
        return;
    }
    let results = remove_addresses_blocking(addresses.clone());
    for (a, result) in addresses.into_iter().zip(results) {
        let (ip, prefix, interface) = (a.ip, a.prefix, &a.interface);
        settle(
            dir,
            &a.file,
            result,
            out,
            |out| &mut out.addresses,
            format!("{ip}/{prefix} on {interface}"),
            [
                format!("removed {ip}/{prefix} from {interface}"),
                format!("{ip}/{prefix} was no longer on {interface}"),
            ],
        );
    }
}

/// Netlink work on a thread of its own with its own runtime: callable with
/// or without a runtime on the calling thread. The thread shares the
/// process's network namespace.
fn remove_addresses_blocking(list: Vec<FoundAddress>) -> Vec<Result<bool, String>> {
    let n = list.len();
    let worker = std::thread::Builder::new()
        .name("release-addresses".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    let e = format!("cannot start a runtime for netlink: {e}");
                    return list.iter().map(|_| Err(e.clone())).collect();
                }
            };
            rt.block_on(async {
                let mut results = Vec::with_capacity(list.len());
                for FoundAddress {
                    ip,
                    prefix,
                    interface,
                    ..
                } in &list
                {
                    results.push(
                        super::fip::driver::remove_address(*ip, *prefix, interface)
                            .await
                            .map_err(|e| {
                                format!("cannot remove {ip}/{prefix} from {interface}: {e}")
                            }),
                    );
                }
                results
            })
        });
    let failed = |e: String| (0..n).map(|_| Err(e.clone())).collect();
    match worker {
        Ok(handle) => handle
            .join()
            .unwrap_or_else(|_| failed("the netlink thread failed".into())),
        Err(e) => failed(format!("cannot start the netlink thread: {e}")),
    }
}

fn release_groups(dir: &Path, groups: Vec<FoundGroup>, grace: Duration, out: &mut Released) {
    let mut running: Vec<FoundGroup> = Vec::new();
    for g in groups {
        match group_now(g.pgid, g.start_ticks) {
            GroupNow::Running => running.push(g),
            GroupNow::Gone => remove_record(dir, &g.file),
            GroupNow::Reused => {
                out.lines.push(format!(
                    "process group {} ended long ago (its number is in use again); left alone",
                    g.pgid
                ));
                remove_record(dir, &g.file);
            }
        }
    }
    if running.is_empty() {
        return;
    }
    for g in &running {
        signal(g.pgid, Signal::SIGTERM);
    }
    let left = wait_until_gone(&running, grace);
    for g in running
        .iter()
        .filter(|g| !left.iter().any(|l| l.file == g.file))
    {
        out.lines
            .push(format!("stopped process group {} (SIGTERM)", g.pgid));
        out.groups.push(g.pgid);
        remove_record(dir, &g.file);
    }
    if left.is_empty() {
        return;
    }
    for g in &left {
        signal(g.pgid, Signal::SIGKILL);
    }
    let stuck = wait_until_gone(&left, KILL_WAIT);
    for g in &left {
        if stuck.iter().any(|s| s.file == g.file) {
            out.errors.push(format!(
                "process group {} is still there after SIGKILL (uninterruptible?)",
                g.pgid
            ));
        } else {
            out.lines.push(format!(
                "killed process group {} (SIGKILL, still running {} ms after SIGTERM)",
                g.pgid,
                grace.as_millis()
            ));
            out.groups.push(g.pgid);
            remove_record(dir, &g.file);
        }
    }
}

fn release_mounts(dir: &Path, mounts: Vec<FoundMount>, grace: Duration, out: &mut Released) {
    for m in mounts {
        let (device, mount_point) = (&m.device, &m.mount_point);
        settle(
            dir,
            &m.file,
            super::disk::driver::release(device, m.dev, mount_point, grace),
            out,
            |out| &mut out.mounts,
            format!("{device} on {mount_point}"),
            [
                format!("unmounted {device} from {mount_point}"),
                format!("{device} was no longer mounted on {mount_point}"),
            ],
        );
    }
}

/// The groups of `list` still running after waiting up to `wait` for all
/// of them to end.
fn wait_until_gone(list: &[FoundGroup], wait: Duration) -> Vec<FoundGroup> {
    let end = Instant::now() + wait;
    loop {
        let left: Vec<FoundGroup> = list.iter().filter(|g| g.running()).cloned().collect();
        if left.is_empty() || Instant::now() >= end {
            return left;
        }
        std::thread::sleep(POLL);
    }
}

fn signal(pgid: u32, sig: Signal) {
    // Never 0 or 1 (our own group, init): a record cannot hold those.
    if pgid > 1 {
        let _ = killpg(Pid::from_raw(pgid as i32), sig);
    }
}

// ---------------------------------------------------------------------------
// process groups and facts about this machine

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GroupNow {
    /// Some member that is not a zombie is still there.
    Running,
    /// Nothing of it runs.
    Gone,
    /// The number belongs to a newer process: the recorded group ended
    /// (a pid is not reused while a group of that id exists).
    Reused,
}

fn group_now(pgid: u32, start_ticks: u64) -> GroupNow {
    if pgid <= 1 {
        return GroupNow::Gone;
    }
    match proc_stat(pgid) {
        Some(leader) if leader.start_ticks != start_ticks => GroupNow::Reused,
        Some(leader) if !leader.dead() => GroupNow::Running,
        _ => {
            // The leader is gone (or a zombie): are members left? The cheap
            // test first; zombies left unreaped count as gone.
            if killpg(Pid::from_raw(pgid as i32), None) == Err(Errno::ESRCH) {
                return GroupNow::Gone;
            }
            if group_members_alive(pgid) {
                GroupNow::Running
            } else {
                GroupNow::Gone
            }
        }
    }
}

/// Whether any process in group `pgid` is alive (not a zombie).
fn group_members_alive(pgid: u32) -> bool {
    let Ok(entries) = fs::read_dir("/proc") else {
        // Without /proc, assume the worst.
        return true;
    };
    entries
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(proc_stat)
        .any(|s| s.pgrp == pgid as i64 && !s.dead())
}

struct ProcStat {
    state: char,
    pgrp: i64,
    start_ticks: u64,
}

impl ProcStat {
    fn dead(&self) -> bool {
        matches!(self.state, 'Z' | 'X' | 'x')
    }
}

/// Parses `/proc/<pid>/stat` (the command name may hold spaces and
/// parentheses, so fields are counted from the last `)`).
fn proc_stat(pid: u32) -> Option<ProcStat> {
    parse_stat(&fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

fn parse_stat(text: &str) -> Option<ProcStat> {
    let (_, rest) = text.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // fields[0] is field 3 (state); pgrp is field 5, starttime field 22.
    Some(ProcStat {
        state: fields.first()?.chars().next()?,
        pgrp: fields.get(2)?.parse().ok()?,
        start_ticks: fields.get(19)?.parse().ok()?,
    })
}

fn boot_id() -> String {
    fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

fn netns() -> String {
    fs::read_link("/proc/self/ns/net")
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn mntns() -> String {
    super::disk::mounts::mount_namespace()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::CommandExt;
    use std::process::Command;

    fn temp_dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("us-owned-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn stat_lines() {
        let s = parse_stat("42 (a) b (c)) S 1 42 42 0 -1 4194560 1 2 3 4 5 6 7 8 20 0 1 0 777 0 0")
            .unwrap();
        assert_eq!((s.state, s.pgrp, s.start_ticks), ('S', 42, 777));
        assert!(parse_stat("").is_none());
        assert!(parse_stat("1 (x) S 1").is_none());
        assert!(
            parse_stat("1 (x) Z 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 notanumber").is_none()
        );
    }

    #[test]
    fn records_round_trip() {
        let r = Record::Group {
            pgid: 7,
            start_ticks: 9,
            boot_id: "b".into(),
        };
        let text = serde_json::to_string(&r).unwrap();
        assert!(text.contains("\"kind\":\"group\""), "{text}");
        assert_eq!(serde_json::from_str::<Record>(&text).unwrap(), r);
    }

    #[test]
    fn nothing_recorded_before_init() {
        // STATE is never set in unit tests: recording is a no-op.
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            record_address(Ipv4Addr::new(198, 51, 100, 9), 24, "none0").await;
            record_group(std::process::id()).await;
            group_reaped(std::process::id()).await;
        });
        assert!(folder().is_none());
    }

    #[test]
    fn release_ends_recorded_groups_and_drops_stale_records() {
        let dir = temp_dir("groups");
        // A group that ignores SIGTERM (needs SIGKILL), one that does not.
        let mut stubborn = Command::new("sh")
            .args(["-c", "trap '' TERM; while :; do sleep 1; done"])
            .process_group(0)
            .spawn()
            .unwrap();
        let mut polite = Command::new("sleep")
            .arg("100")
            .process_group(0)
            .spawn()
            .unwrap();
        for pid in [stubborn.id(), polite.id()] {
            let ticks = proc_stat(pid).unwrap().start_ticks;
            let rec = Record::Group {
                pgid: pid,
                start_ticks: ticks,
                boot_id: boot_id(),
            };
            write_atomic(&dir, &group_file(pid), &serde_json::to_vec(&rec).unwrap()).unwrap();
        }
        // A reused number (our own pid, another start time), another boot,
        // junk, a torn temporary file.
        let me = std::process::id();
        let reused = Record::Group {
            pgid: me,
            start_ticks: 1,
            boot_id: boot_id(),
        };
        fs::write(
            dir.join(group_file(me)),
            serde_json::to_vec(&reused).unwrap(),
        )
        .unwrap();
        let old_boot = Record::Address {
            address: "198.51.100.77/24".into(),
            interface: "eth0".into(),
            boot_id: "another-boot".into(),
            netns: netns(),
        };
        fs::write(
            dir.join("addr-198.51.100.77_24"),
            serde_json::to_vec(&old_boot).unwrap(),
        )
        .unwrap();
        fs::write(dir.join("pgid-junk"), "{not json").unwrap();
        fs::write(dir.join(".pgid-1.1.1.tmp"), "{").unwrap();

        let r = release(&dir);
        assert!(r.errors.is_empty(), "{r:?}");
        let mut ended = r.groups.clone();
        ended.sort();
        let mut want = vec![stubborn.id(), polite.id()];
        want.sort();
        assert_eq!(ended, want, "{r:?}");
        let text = r.lines.join("\n");
        assert!(
            text.contains(&format!("killed process group {}", stubborn.id())),
            "{text}"
        );
        assert!(
            text.contains(&format!("stopped process group {}", polite.id())),
            "{text}"
        );
        assert!(text.contains("its number is in use again"), "{text}");
        assert!(text.contains("before a reboot"), "{text}");
        assert!(text.contains("unreadable record pgid-junk"), "{text}");
        assert!(stubborn.wait().is_ok() && polite.wait().is_ok());
        // Every record is gone, only the lock is left.
        let left: Vec<String> = fs::read_dir(&dir)
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .collect();
        assert_eq!(left, vec![LOCK_FILE.to_string()]);
        assert!(release_all(&dir).is_empty());
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn release_refuses_a_locked_folder() {
        let dir = temp_dir("locked");
        let held = try_lock(&dir).unwrap().expect("free");
        fs::write(dir.join("pgid-1"), "{}").unwrap();
        let r = lock_within(&dir, Duration::from_millis(50));
        assert!(r.is_err_and(|e| e.contains("still running")));
        drop(held);
        assert!(lock_within(&dir, Duration::from_millis(50)).is_ok());
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn missing_folder_is_nothing_to_do() {
        let r = release(Path::new("/nonexistent/understudy/owned"));
        assert_eq!(r, Released::default());
    }
}
