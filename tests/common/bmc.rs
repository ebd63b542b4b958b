//! BMCs for the lab: Debian `openipmi`'s `ipmi_sim`, one per lab server,
//! in the client's namespace on 198.51.100.100 (port 16230 + i), so that a
//! cut of the cluster's traffic at the switch leaves them reachable, as a
//! separate management network would. Its chassis control program plays
//! the host: "power off" takes that server's links down, removes its
//! addresses and ends every process of its namespace (frozen first, so
//! that no guardian tells the peers), and only then reports the power off.
//! `ipmitool -I lanplus -C 3` cross-checks (without `-C 3` every call
//! against ipmi_sim takes 10 s: it lacks Get Channel Cipher Suites).

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Instant;

use super::cluster::Lab;
use super::skip::{self, Missing};
use super::{run_cmd, Background, CmdOut, DEADLINE, POLL};

/// Where the lab's BMCs answer.
pub const BMC_ADDRESS: &str = "198.51.100.100";
/// The IPMI user of every lab BMC (admin privilege).
pub const BMC_USER: &str = "understudy";

/// What this machine lacks to run the lab's BMCs, if anything.
pub fn bmc_unavailable() -> Option<Missing> {
    skip::need_program("ipmi_sim", "openipmi")
        .or_else(|| skip::need_program("ipmitool", "ipmitool"))
}

/// Server i's BMC port.
pub fn bmc_port(i: usize) -> u16 {
    16230 + i as u16
}

/// Server i's BMC password (each BMC its own).
pub fn bmc_password(i: usize) -> String {
    format!("bmc-n{i}-pw")
}

/// The lab's BMCs, stopped when dropped.
pub struct Bmcs {
    _sims: Vec<Background>,
    client_ns: String,
}

/// The `bmc: (...)` field of server i in a lab configuration: polled every
/// `interval_ms`, answer within `timeout_ms`, the password in a file of
/// mode 0600.
pub fn bmc_field(lab: &Lab, i: usize, interval_ms: u32, timeout_ms: u32) -> String {
    let file = lab.dir().join(&format!("bmc-n{i}.password"));
    std::fs::write(&file, format!("{}\n", bmc_password(i))).expect("write the BMC password");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).expect("chmod 600");
    format!(
        r#"bmc: (address: "{BMC_ADDRESS}", port: {}, user: "{BMC_USER}", password_file: "{}", interval_ms: {interval_ms}, timeout_ms: {timeout_ms})"#,
        bmc_port(i),
        file.display()
    )
}

/// `lab_config`'s servers, each with its `bmc_field`: replaces every
/// `Server(name: "nI", interconnects: [...])` of `text`.
pub fn with_bmcs(lab: &Lab, text: &str, interval_ms: u32, timeout_ms: u32) -> String {
    let mut out = text.to_string();
    for i in 1..=lab.servers() {
        let head = format!("Server(name: \"n{i}\", interconnects: [");
        let start = out
            .find(&head)
            .unwrap_or_else(|| panic!("no {head} in {out}"));
        let close = start + out[start..].find("])").expect("end of the interconnects") + 1;
        let field = bmc_field(lab, i, interval_ms, timeout_ms);
        out.insert_str(close, &format!(", {field}"));
    }
    out
}

impl Bmcs {
    /// Starts one ipmi_sim per lab server and waits until each answers.
    pub fn start(lab: &Lab) -> Bmcs {
        let client_ns = lab.client_ns();
        let mut sims = Vec::new();
        for i in 1..=lab.servers() {
            let dir = lab.dir().join(&format!("bmc-n{i}"));
            std::fs::create_dir_all(dir.join("state")).expect("BMC folder");
            let ns = lab.ns(i);
            let control = lab.dir().script(
                &format!("bmc-n{i}/chassis.sh"),
                &format!(
                    r#"# ipmi_sim's chassis control of n{i}: "$0 0x20 get power" / "$0 0x20 set power 0|1".
off='{off}'
case "$2" in
get)
    shift 2
    for p in "$@"; do
        [ "$p" = power ] || continue
        if [ -e "$off" ]; then echo power:0; else echo power:1; fi
    done ;;
set)
    [ "$3" = power ] || exit 0
    if [ "$4" = 0 ]; then
        echo "$(date +%s.%N) power off" >> '{log}'
        # The host loses power: nothing of it talks any more, then
        # nothing of it runs; only then does the BMC say "off".
        ip -n {ns} link set eth0 down
        ip -n {ns} link set eth1 down
        ip -n {ns} address flush dev eth0
        ip -n {ns} address flush dev eth1
        pids=$(ip netns pids {ns})
        [ -z "$pids" ] || kill -STOP $pids
        [ -z "$pids" ] || kill -KILL $pids
        : > "$off"
    else
        echo "$(date +%s.%N) power on" >> '{log}'
        rm -f "$off"
    fi ;;
esac
"#,
                    off = dir.join("off").display(),
                    log = dir.join("chassis.log").display(),
                ),
            );
            let conf = dir.join("lan.conf");
            std::fs::write(
                &conf,
                format!(
                    r#"name "bmc-n{i}"
set_working_mc 0x20
  startlan 1
    addr {BMC_ADDRESS} {port}
    priv_limit admin
    allowed_auths_callback none md2 md5 straight
    allowed_auths_user none md2 md5 straight
    allowed_auths_operator none md2 md5 straight
    allowed_auths_admin none md2 md5 straight
    guid a123456789abcdefa123456789abcd{i:02x}
  endlan
  chassis_control "{control} 0x20"
  user 2 true "{BMC_USER}" "{pw}" admin 10 none md2 md5 straight
"#,
                    port = bmc_port(i),
                    control = control.display(),
                    pw = bmc_password(i),
                ),
            )
            .expect("lan.conf");
            let emu = dir.join("bmc.emu");
            std::fs::write(
                &emu,
                "mc_setbmc 0x20\n\
                 mc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02 persist_sdr\n\
                 mc_enable 0x20\n",
            )
            .expect("bmc.emu");
            let log = std::fs::File::create(dir.join("ipmi_sim.log")).expect("log");
            let mut cmd = Command::new("ip");
            cmd.args(["netns", "exec", &client_ns, "ipmi_sim", "-n", "-c"])
                .arg(&conf)
                .arg("-f")
                .arg(&emu)
                .arg("-s")
                .arg(dir.join("state"))
                .stdout(log.try_clone().expect("log"))
                .stderr(log);
            sims.push(Background::spawn(&format!("ipmi_sim of n{i}"), &mut cmd));
        }
        let bmcs = Bmcs {
            _sims: sims,
            client_ns,
        };
        for i in 1..=lab.servers() {
            let end = Instant::now() + DEADLINE;
            loop {
                let out = bmcs.ipmitool(i, &["chassis", "power", "status"]);
                if out.success() && out.stdout.contains("is on") {
                    break;
                }
                assert!(
                    Instant::now() < end,
                    "n{i}'s BMC (ipmi_sim) does not answer: {out:?}\n{}",
                    std::fs::read_to_string(lab.dir().join(&format!("bmc-n{i}/ipmi_sim.log")))
                        .unwrap_or_default()
                );
                std::thread::sleep(POLL);
            }
        }
        bmcs
    }

    /// `ipmitool -I lanplus -C 3` against server i's BMC, from the client's
    /// namespace.
    pub fn ipmitool(&self, i: usize, args: &[&str]) -> CmdOut {
        let mut cmd = Command::new("ip");
        let port = bmc_port(i).to_string();
        let pw = bmc_password(i);
        cmd.args([
            "netns",
            "exec",
            &self.client_ns,
            "ipmitool",
            "-I",
            "lanplus",
            "-C",
            "3",
        ])
        .args(["-H", BMC_ADDRESS, "-p", &port, "-U", BMC_USER, "-P", &pw])
        .args(args)
        .stdin(Stdio::null());
        run_cmd(&mut cmd)
    }

    /// What ipmitool says of server i's chassis power: "on" or "off".
    pub fn power(&self, i: usize) -> String {
        let out = self.ipmitool(i, &["chassis", "power", "status"]);
        assert!(
            out.success(),
            "ipmitool chassis power status of n{i}: {out:?}"
        );
        if out.stdout.contains("is off") {
            "off".into()
        } else if out.stdout.contains("is on") {
            "on".into()
        } else {
            panic!("ipmitool chassis power status of n{i}: {out:?}")
        }
    }

    /// The chassis control log of server i's BMC (power off / on lines).
    pub fn chassis_log(lab: &Lab, i: usize) -> Vec<String> {
        std::fs::read_to_string(lab.dir().join(&format!("bmc-n{i}/chassis.log")))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }
}

/// Where server i's BMC keeps its files.
pub fn bmc_dir(lab: &Lab, i: usize) -> PathBuf {
    lab.dir().join(&format!("bmc-n{i}"))
}
