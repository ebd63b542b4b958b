//! The disk resource and the disk monitor on one server, with real parts:
//! an ext4 filesystem on a loop device, mounted by the real daemon, which
//! runs in a mount namespace of its own (`unshare -m`), so that nothing is
//! mounted in the test's namespace and a failed test leaves no mount
//! behind. What the daemon mounted is read where an administrator would
//! look: `/proc/<daemon pid>/mountinfo`, the files under the mount point
//! as the daemon's namespace shows them, `dumpe2fs`, `status` and the
//! alerts.
//!
//! Nothing sleeps to synchronise: every wait polls for something
//! observable, with a deadline.

mod common;

use std::path::Path;

use common::disk::*;
use common::*;

/// The daemon in a mount namespace of its own.
const OWN_MOUNT_NS: &[&str] = &["unshare", "-m", "--propagation", "slave"];

fn lacks_disks() -> bool {
    match disk_unavailable() {
        Some(missing) => {
            missing.skip();
            true
        }
        None => false,
    }
}

fn daemon_in_own_ns(t: &TestDir, config: &str) -> Daemon {
    Daemon::start_wrapped(t, config, "s1", OWN_MOUNT_NS)
}

/// Waits until process `pid`'s current folder or an open file is under
/// `dir` as its own namespace shows it (it is then a user of the
/// filesystem mounted there).
fn wait_using(pid: u32, dir: &Path) {
    wait_for(
        &format!("process {pid} to use {}", dir.display()),
        DEADLINE,
        || {
            let cwd = std::fs::read_link(format!("/proc/{pid}/cwd")).unwrap_or_default();
            let fd3 = std::fs::read_link(format!("/proc/{pid}/fd/3")).unwrap_or_default();
            cwd.starts_with(dir) || fd3.starts_with(dir)
        },
    );
}

/// Group `data`: disk resource `disk1` (with `disk_extra` fields and
/// `disk_attrs` resource fields) and exec resource `app`, which depends on
/// it by default. `app` records its `CLP_*` variables and writes a file on
/// the filesystem.
fn data_group(t: &TestDir, device: &str, mnt: &Path, disk_extra: &str, disk_attrs: &str) -> String {
    t.script(
        "app-start.sh",
        &format!(
            r#"env | grep '^CLP_' > "$DIR/app.start.env"
echo "written by the start script" > '{mnt}/hello.txt'"#,
            mnt = mnt.display()
        ),
    );
    t.script("app-stop.sh", r#"env | grep '^CLP_' > "$DIR/app.stop.env""#);
    format!(
        r#"Group(name: "data", startup: Manual, resources: [
            Resource(name: "disk1", kind: Disk(device: "{device}", mount_point: "{mnt}", fs_type: "ext4"{disk_extra}){disk_attrs}),
            Resource(name: "app", kind: Exec(start: "app-start.sh", stop: "app-stop.sh")),
        ]),"#,
        mnt = mnt.display()
    )
}

#[test]
fn a_group_mounts_its_disk_runs_on_it_and_unmounts_it_ending_its_users() {
    if lacks_disks() {
        return;
    }
    let t = TestDir::new("disk");
    let disk = LoopDisk::ext4(t.path(), "shared.img", 32, &[]);
    let dev = dev_num(disk.device());
    // The filesystem asks for a check (mounted more often than its maximum):
    // fsck -p (the default) then checks it and resets the count.
    must(tool("tune2fs").args(["-c", "20", "-C", "25", disk.device()]));
    let mnt = t.join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let groups = data_group(&t, disk.device(), &mnt, ", kill_grace: 1", "");
    let d = daemon_in_own_ns(&t, &t.config(&["s1"], "", &groups));
    let pid = d.daemon_pid();
    assert_ne!(
        mount_ns(pid),
        mount_ns(std::process::id()),
        "the daemon runs in a mount namespace of its own"
    );

    d.ok(&["group", "start", "data"]);
    assert_eq!(d.group_state("data"), "Online");
    let disk1 = d.resource("data", "disk1");
    assert_eq!(
        (&disk1["kind"], &disk1["state"]),
        (&"disk".into(), &"Online".into()),
        "{disk1}"
    );
    // Mounted where the daemon is, and nowhere in the test's namespace.
    assert_eq!(mounted_in(pid, dev), [mnt.display().to_string()]);
    assert!(mounted_in(std::process::id(), dev).is_empty());
    // The exec resource ran after the mount (its default dependency), on
    // the filesystem, with CLP_DISK=SUCCESS.
    let hello = std::fs::read_to_string(seen_by(pid, &mnt.join("hello.txt")))
        .expect("the start script's file is on the mounted filesystem");
    assert_eq!(hello, "written by the start script\n");
    assert!(
        !mnt.join("hello.txt").exists(),
        "nothing written under the bare folder"
    );
    assert_eq!(
        t.env_file("app.start.env")
            .get("CLP_DISK")
            .map(String::as_str),
        Some("SUCCESS")
    );
    let alerts = d.alerts_json(100);
    let order: Vec<String> = alerts
        .iter()
        .filter(|a| a["module"] == "rc" && [30, 31].contains(&a["event_id"].as_u64().unwrap_or(0)))
        .map(|a| a["message"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(
        order,
        [
            "resource disk1: activation started",
            "resource disk1: activation completed",
            "resource app: activation started",
            "resource app: activation completed",
        ],
        "{}",
        describe_alerts(&alerts)
    );

    // Two processes use the filesystem, as an operator's shell would: one
    // sits in the folder, one keeps a file open and ignores SIGTERM.
    let mut sitter = spawn_in_mount_ns(pid, &format!("cd '{}' && exec sleep 300", mnt.display()));
    let mut stubborn = spawn_in_mount_ns(
        pid,
        &format!(
            "trap '' TERM; exec 3<'{}/hello.txt'; while :; do sleep 1; done",
            mnt.display()
        ),
    );
    wait_using(sitter.id(), &mnt);
    wait_using(stubborn.id(), &mnt);

    d.ok(&["group", "stop", "data"]);
    assert_eq!(d.group_state("data"), "Offline");
    assert!(mounted_in(pid, dev).is_empty(), "unmounted");
    assert_eq!(
        t.env_file("app.stop.env")
            .get("CLP_DISK")
            .map(String::as_str),
        Some("SUCCESS"),
        "the exec resource stops before its disk"
    );
    use std::os::unix::process::ExitStatusExt;
    let s = sitter.wait().unwrap();
    assert_eq!(
        s.signal(),
        Some(libc::SIGTERM),
        "the sitter ended by SIGTERM: {s}"
    );
    let s = stubborn.wait().unwrap();
    assert_eq!(
        s.signal(),
        Some(libc::SIGKILL),
        "the stubborn one needed SIGKILL: {s}"
    );
    let log = std::fs::read_to_string(d.state_dir.join("log/disk1.log")).unwrap_or_default();
    assert!(
        log.contains(&format!("ended by SIGTERM: {}", sitter.id()))
            && log.contains(&format!("killed (SIGKILL): {}", stubborn.id())),
        "{log}"
    );
    assert!(log.contains("running fsck -t ext4 -p"), "{log}");
    // fsck checked the filesystem (count reset), then one mount.
    assert_eq!(disk.superblock()["Mount count"], "1");
    assert_eq!(disk.superblock()["Filesystem state"], "clean");
    assert!(
        d.state_dir.join("owned").read_dir().unwrap().all(|e| {
            let n = e.unwrap().file_name();
            !n.to_string_lossy().starts_with("mount-")
        }),
        "no mount left on record"
    );
}

#[test]
fn a_device_mounted_elsewhere_is_refused_and_the_exec_sees_clp_disk_failure() {
    if lacks_disks() {
        return;
    }
    let t = TestDir::new("diskdup");
    let disk = LoopDisk::ext4(t.path(), "shared.img", 32, &[]);
    let dev = dev_num(disk.device());
    let (mnt, other) = (t.join("mnt"), t.join("other"));
    std::fs::create_dir(&mnt).unwrap();
    std::fs::create_dir(&other).unwrap();
    // Someone else has the device mounted, in a mount namespace only its
    // own processes see (a container, a service with private mounts).
    let ready = t.join("other.ready");
    let elsewhere = Namespaced::start(
        &format!(
            "mount -t ext4 {} '{}' && touch '{}' && exec sleep 300",
            disk.device(),
            other.display(),
            ready.display()
        ),
        &ready,
    );
    assert_eq!(
        mounted_in(elsewhere.pid(), dev),
        [other.display().to_string()]
    );

    // The disk's failure is passed over, so that the exec resource runs
    // and can tell it from CLP_DISK.
    let groups = data_group(
        &t,
        disk.device(),
        &mnt,
        "",
        ", activation: (failover_threshold: 0, final_action: NoOperationNextResource)",
    );
    let d = daemon_in_own_ns(&t, &t.config(&["s1"], "", &groups));
    let pid = d.daemon_pid();
    let out = d.cli(&["group", "start", "data"]);
    assert!(!out.success(), "{out:?}");
    let disk1 = d.resource("data", "disk1");
    assert_eq!(disk1["state"], "OnlineFailure", "{disk1}");
    let error = disk1["last_error"].as_str().unwrap_or_default();
    assert!(
        error.contains("already mounted on") && error.contains(&other.display().to_string()),
        "{error}"
    );
    assert!(
        mounted_in(pid, dev).is_empty(),
        "nothing mounted by the daemon"
    );
    assert_eq!(
        t.env_file("app.start.env")
            .get("CLP_DISK")
            .map(String::as_str),
        Some("FAILURE")
    );
    let alerts = d.alerts_json(100);
    assert!(
        alerts.iter().any(|a| a["module"] == "rc"
            && a["event_id"] == 32
            && a["message"].as_str().is_some_and(|m| m.contains("disk1"))),
        "rc 32 for disk1: {}",
        describe_alerts(&alerts)
    );

    // Stopping the group leaves the other mount alone.
    d.ok(&["group", "stop", "data"]);
    assert_eq!(d.group_state("data"), "Offline");
    assert_eq!(
        mounted_in(elsewhere.pid(), dev),
        [other.display().to_string()]
    );
    assert_eq!(
        t.env_file("app.stop.env")
            .get("CLP_DISK")
            .map(String::as_str),
        Some("FAILURE")
    );

    // Once it is gone, the same group starts.
    drop(elsewhere);
    d.ok(&["group", "start", "data"]);
    assert_eq!(mounted_in(pid, dev), [mnt.display().to_string()]);
    assert_eq!(
        t.env_file("app.start.env")
            .get("CLP_DISK")
            .map(String::as_str),
        Some("SUCCESS")
    );
    d.ok(&["group", "stop", "data"]);
    assert!(mounted_in(pid, dev).is_empty());
}

#[test]
fn a_filesystem_that_cannot_be_unmounted_fails_the_deactivation_through_its_ladder() {
    if lacks_disks() {
        return;
    }
    let t = TestDir::new("diskbusy");
    let disk = LoopDisk::ext4(t.path(), "shared.img", 32, &[]);
    let dev = dev_num(disk.device());
    let mnt = t.join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    // Users are left alone, one unmount retry; the deactivation ladder:
    // one retry, then no operation (the resources after it left running).
    let groups = data_group(
        &t,
        disk.device(),
        &mnt,
        ", forced_operation: NoOperation, unmount_retry: 1, fsck: Never",
        ", deactivation: (retry: 1, final_action: NoOperation)",
    );
    let d = daemon_in_own_ns(&t, &t.config(&["s1"], "", &groups));
    let pid = d.daemon_pid();
    d.ok(&["group", "start", "data"]);
    let mut user = spawn_in_mount_ns(pid, &format!("cd '{}' && exec sleep 300", mnt.display()));
    wait_using(user.id(), &mnt);

    let out = d.cli(&["group", "stop", "data"]);
    assert!(!out.success(), "{out:?}");
    assert_eq!(d.group_state("data"), "OfflineFailure");
    let disk1 = d.resource("data", "disk1");
    assert_eq!(disk1["state"], "OfflineFailure", "{disk1}");
    let error = disk1["last_error"].as_str().unwrap_or_default();
    assert!(
        error.contains(&format!(
            "cannot unmount {}: used by process {}",
            mnt.display(),
            user.id()
        )) && error.contains("(2 attempts)"),
        "{error}"
    );
    assert_eq!(
        mounted_in(pid, dev),
        [mnt.display().to_string()],
        "still mounted"
    );
    assert!(pid_alive(user.id()), "NoOperation leaves the user alone");
    let alerts = d.alerts_json(200);
    let about_disk = |id: u64| {
        alerts
            .iter()
            .filter(|a| {
                a["module"] == "rc"
                    && a["event_id"] == id
                    && a["message"].as_str().is_some_and(|m| m.contains("disk1"))
            })
            .count()
    };
    assert_eq!(
        about_disk(42),
        2,
        "a failure and its retry: {}",
        describe_alerts(&alerts)
    );
    assert_eq!(
        about_disk(220),
        1,
        "one retry: {}",
        describe_alerts(&alerts)
    );
    assert_eq!(
        about_disk(1227),
        1,
        "the final action: {}",
        describe_alerts(&alerts)
    );

    // The user gone, the group stops.
    let _ = user.kill();
    let _ = user.wait();
    d.ok(&["group", "stop", "data"]);
    assert_eq!(d.group_state("data"), "Offline");
    assert!(mounted_in(pid, dev).is_empty());
}

#[test]
fn a_missing_mount_point_is_refused_and_config_check_names_the_fields() {
    if lacks_disks() {
        return;
    }
    let t = TestDir::new("diskcfg");
    let disk = LoopDisk::ext4(t.path(), "shared.img", 32, &[]);
    let mnt = t.join("not-there");
    let groups = data_group(&t, disk.device(), &mnt, "", "");
    let config = t.write("cluster.ron", &t.config(&["s1"], "", &groups));
    // config check: the machine lacks the folder.
    let out = understudy(&["config", "check", config.to_str().unwrap()]);
    assert_eq!(out.code, Some(2), "{out:?}");
    assert!(
        out.stderr.contains(&format!(
            "groups[data].resources[disk1].kind.mount_point: {} does not exist",
            mnt.display()
        )),
        "{}",
        out.stderr
    );
    // A file is not a device; an unknown type and a bad option are named.
    let bad = data_group(
        &t,
        disk.image.to_str().unwrap(),
        &t.join("mnt"),
        ", mount_options: \"rw,bind\"",
        "",
    )
    .replace("fs_type: \"ext4\"", "fs_type: \"ntfs\"");
    let bad_config = t.write("bad.ron", &t.config(&["s1"], "", &bad));
    let out = understudy(&["config", "check", bad_config.to_str().unwrap()]);
    assert_eq!(out.code, Some(2), "{out:?}");
    for needle in [
        "groups[data].resources[disk1].kind.fs_type: \"ntfs\" is not a known filesystem type",
        "groups[data].resources[disk1].kind.mount_options: \"bind\" is an fstab or mount(8) option",
    ] {
        assert!(out.stderr.contains(needle), "{needle}\n{}", out.stderr);
    }

    // The daemon starts (a warning), and the activation is refused.
    let d = daemon_in_own_ns(&t, &std::fs::read_to_string(&config).unwrap());
    let out = d.cli(&["group", "start", "data"]);
    assert!(!out.success(), "{out:?}");
    let disk1 = d.resource("data", "disk1");
    assert!(
        disk1["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("does not exist (create the folder")),
        "{disk1}"
    );
    assert!(!mnt.exists(), "the mount point is never created");
    assert!(mounted_in(d.daemon_pid(), dev_num(disk.device())).is_empty());
}

#[test]
fn the_disk_monitor_reads_the_device_and_turns_error_when_reads_fail() {
    if lacks_disks() {
        return;
    }
    let t = TestDir::new("diskw");
    // A disk that will die: a loop device over a file on a filesystem that
    // the test shuts down (every read of it then fails with EIO). That
    // outer filesystem is mounted in a namespace of its own.
    let outer_disk = LoopDisk::ext4(t.path(), "outer.img", 32, &[]);
    let outer = t.join("outer");
    std::fs::create_dir(&outer).unwrap();
    let ready = t.join("inner.ready");
    let holder = Namespaced::start(
        &format!(
            "mount -t ext4 {dev} '{outer}' && truncate -s 8M '{outer}/inner.img' && touch '{ready}' && exec sleep 300",
            dev = outer_disk.device(),
            outer = outer.display(),
            ready = ready.display()
        ),
        &ready,
    );
    let inner_image = seen_by(holder.pid(), &outer.join("inner.img"));
    let dying = must(
        tool("losetup")
            .args(["-f", "--show", "--direct-io=on"])
            .arg(&inner_image),
    )
    .stdout
    .trim()
    .to_string();
    // Detached at the end of the test, before the outer disk.
    struct Detach(String);
    impl Drop for Detach {
        fn drop(&mut self) {
            let _ = run_cmd(tool("losetup").args(["-d", &self.0]));
        }
    }
    let _dying_guard = Detach(dying.clone());
    // A disk that will go away: detached while watched.
    let mut leaving = LoopDisk::ext4(t.path(), "leaving.img", 16, &[]);
    let leaving_dev = leaving.device().to_string();

    let monitor = |name: &str, device: &str, io: &str| {
        format!(
            r#"Monitor(name: "{name}", kind: Disk(device: "{device}"{io}), interval: 1, timeout: 10, retry: 0,
                       recovery: (target: LocalServer)),"#
        )
    };
    let monitors = format!(
        "monitors: [{}{}]",
        monitor("dyingw", &dying, ", io_size: 4096"),
        monitor("leavingw", &leaving_dev, "")
    );
    let d = daemon_in_own_ns(&t, &t.config(&["s1"], &format!("{monitors},"), ""));
    d.wait_monitor_state("dyingw", "Normal");
    d.wait_monitor_state("leavingw", "Normal");
    let status = d.ok(&["status"]);
    assert!(
        status.contains("dyingw") && status.contains("disk"),
        "{status}"
    );

    shut_down_ext4(&seen_by(holder.pid(), &outer));
    d.wait_monitor_state("dyingw", "Error");
    let e = d.monitor("dyingw")["last_error"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        e.contains("cannot read") && e.contains("Input/output error"),
        "{e}"
    );
    d.wait_monitor_alert("dyingw", 9, 1);

    leaving.detach(&leaving_dev);
    d.wait_monitor_state("leavingw", "Error");
    let e = d.monitor("leavingw")["last_error"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(e.contains("read 0 of 2000000 bytes"), "{e}");
    drop(holder);
}
