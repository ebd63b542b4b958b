//! The disk resource on two servers sharing one disk, in the netns lab.
//!
//! The shared disk is one image file with an ext4 filesystem made with
//! multi-mount protection (`mkfs.ext4 -O mmp`), attached to two loop
//! devices, one per server (each server's configuration names
//! `/proc/self/cwd/disk`, a link in its own state folder to its device):
//! two servers see one disk through two devices, and the kernel keeps a
//! filesystem per device, so a mount on each would be the real double
//! mount. (One loop device mounted in two namespaces would share a single
//! superblock, which no two servers ever do, and MMP would not be asked.)
//!
//! Each server's daemon runs in a mount namespace of its own (`ip netns
//! exec` makes one per invocation): its mounts are invisible to the other
//! server, so what keeps the filesystem on one server is the product's
//! guard and the kernel's MMP, never a shared mount table. The test checks
//! that isolation first. A mount checker ([`MountWatch`]) polls every
//! server's mount namespaces and fails the test if the filesystem is ever
//! mounted on two servers at once.

mod common;

use std::time::Duration;

use common::cluster::{Lab, FORM_WAIT};
use common::disk::*;
use common::{alerts_file, wait_for, TestDir};

const WAIT: Duration = Duration::from_secs(30);

#[test]
fn the_shared_disk_follows_the_group_and_is_never_mounted_twice() {
    if let Some(missing) = disk_unavailable() {
        missing.skip();
        return;
    }
    let shared = TestDir::new("sdisk");
    let mut disk = LoopDisk::ext4(shared.path(), "shared.img", 64, &["-O", "mmp"]);
    disk.attach();
    let devices = [disk.devices[0].clone(), disk.devices[1].clone()];
    let nums = [dev_num(&devices[0]), dev_num(&devices[1])];
    let Some(mut lab) = Lab::new("disk", 2) else {
        return;
    };
    lab.run_in_state_dirs();
    for (i, device) in devices.iter().enumerate() {
        let dir = lab.state_dir(i + 1);
        std::fs::create_dir_all(&dir).unwrap();
        std::os::unix::fs::symlink(device, dir.join("disk")).unwrap();
    }
    let mnt = lab.dir().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    // The application writes where it runs and how it was started on the
    // shared filesystem; its cwd is its server's state folder (nI).
    lab.dir().script(
        "app-start.sh",
        &format!(
            r#"echo "$(basename "$PWD") $CLP_EVENT $CLP_DISK" >> '{}/history.txt'"#,
            mnt.display()
        ),
    );
    let groups = format!(
        r#"Group(name: "data", resources: [
            Resource(name: "disk1", kind: Disk(device: "/proc/self/cwd/disk", mount_point: "{}",
                                               fs_type: "ext4", fsck: Never, kill_grace: 1)),
            Resource(name: "app", kind: Exec(start: "app-start.sh", stop: "/bin/true")),
        ])"#,
        mnt.display()
    );
    let text = lab.config(&groups, "");
    lab.write_config(&text);
    let watch = lab.watch_mount(&nums);
    lab.start_all();
    lab.wait_group_on(1, "data", "n1", FORM_WAIT);
    lab.wait_group_on(2, "data", "n1", FORM_WAIT);
    watch.wait_holders(&[1], WAIT);

    // Each server's mounts are its own.
    let (pid1, pid2) = (lab.daemon_pid(1), lab.daemon_pid(2));
    let me = std::process::id();
    assert_ne!(mount_ns(pid1), mount_ns(pid2));
    assert_ne!(mount_ns(pid1), mount_ns(me));
    assert_eq!(mounted_in(pid1, nums[0]), [mnt.display().to_string()]);
    for n in nums {
        assert!(mounted_in(pid2, n).is_empty(), "n2 does not see n1's mount");
        assert!(
            mounted_in(me, n).is_empty(),
            "the test's namespace has no mount"
        );
    }
    let history = |pid: u32| {
        std::fs::read_to_string(seen_by(pid, &mnt.join("history.txt"))).unwrap_or_default()
    };
    assert_eq!(history(pid1), "n1 START SUCCESS\n");

    // The second guard: while n1 has it mounted, a mount by hand on n2
    // (in its daemon's namespace) is refused by the kernel (MMP).
    let by_hand = run_in_mount_ns(
        pid2,
        &["mount", "-t", "ext4", &devices[1], mnt.to_str().unwrap()],
    );
    assert!(
        !by_hand.success(),
        "MMP let a second server mount it: {by_hand:?}"
    );
    assert!(mounted_in(pid2, nums[1]).is_empty());
    watch.wait_holders(&[1], WAIT);

    // A move: unmounted on n1, mounted on n2, with the data.
    lab.ctl_ok(1, &["group", "move", "data"]);
    lab.wait_group_on(1, "data", "n2", WAIT);
    watch.wait_holders(&[2], WAIT);
    assert!(mounted_in(pid1, nums[0]).is_empty());
    assert_eq!(history(pid2), "n1 START SUCCESS\nn2 START SUCCESS\n");

    // n2's daemon dies: its guardian unmounts the filesystem (after ending
    // the application), then n1 takes over.
    lab.kill9_daemon(2);
    lab.wait_group_on(1, "data", "n1", WAIT);
    watch.wait_holders(&[1], WAIT);
    // The guardian records pm 1200 after it told n1 (which may be faster).
    let died = || -> Vec<String> {
        alerts_file(&lab.state_dir(2))
            .iter()
            .filter(|a| a["module"] == "pm" && a["event_id"] == 1200)
            .filter_map(|a| a["message"].as_str().map(str::to_string))
            .collect()
    };
    wait_for("pm 1200 of n2's guardian", WAIT, || !died().is_empty());
    assert!(
        died().iter().any(|m| m.contains("1 filesystem")),
        "pm 1200 of n2's guardian: {:?}",
        died()
    );
    assert_eq!(
        history(pid1),
        "n1 START SUCCESS\nn2 START SUCCESS\nn1 FAILOVER SUCCESS\n"
    );
    watch.assert_never_double();
}
