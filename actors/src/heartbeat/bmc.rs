//! IPMI over LAN to the servers' BMCs (settings: the brain's
//! [`crate::model::bmc`]): the polls of the BMC heartbeat path (Get
//! Chassis Status, NetFn 0x00 cmd 0x01) and the forced stop by BMC
//! (Chassis Control power down, cmd 0x02 data 0x00, then Get Chassis
//! Status until the power is off). ipmi-rs (RMCP+, cipher suite 3) is
//! blocking: a poller is a thread of its own, a forced stop runs in the
//! blocking pool; never on the actors' thread. Error texts never hold the
//! password.

use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use actix::Message;
use ipmi_rs::connection::{
    IpmiConnection, LogicalUnit, Message as IpmiMessage, Request, RequestTargetAddress,
};
use ipmi_rs::rmcp::{ActivationError, Rmcp, RmcpIpmiError, RmcpIpmiReceiveError};

pub use crate::model::bmc::{BmcConfig, BmcReading, Secret, MAX_PASSWORD};

/// NetFn Chassis.
const NETFN_CHASSIS: u8 = 0x00;
const GET_CHASSIS_STATUS: u8 = 0x01;
const CHASSIS_CONTROL: u8 = 0x02;
/// Chassis Control's "power down".
const POWER_DOWN: u8 = 0x00;
/// NetFn App, Set Session Privilege Level.
const NETFN_APP: u8 = 0x06;
const SET_SESSION_PRIVILEGE: u8 = 0x3b;
/// Operator: enough for Chassis Control, and allowed to admin users too.
const PRIVILEGE_OPERATOR: u8 = 0x03;
/// How often a forced stop asks whether the power is off yet.
const CONFIRM_EVERY: Duration = Duration::from_millis(200);

/// The password of a BMC: `password`, or the first line of
/// `password_file` (mode 0600 / 0400). Errors name the file, never its
/// content.
pub fn load_password(config: &BmcConfig) -> Result<Secret, String> {
    if let Some(pw) = &config.password {
        return Ok(pw.clone());
    }
    let file = config.password_file.as_deref().unwrap_or_default();
    crate::notify::mail::password::read_secret_file(file, "password", MAX_PASSWORD)
}

/// One BMC's IPMI session, opened when first needed and again after a
/// failure.
pub struct Session {
    config: BmcConfig,
    password: Secret,
    timeout: Duration,
    rmcp: Option<Rmcp>,
}

impl Session {
    pub fn new(config: BmcConfig, password: Secret, timeout: Duration) -> Session {
        Session {
            config,
            password,
            timeout,
            rmcp: None,
        }
    }

    fn connect(&mut self) -> Result<&mut Rmcp, String> {
        if self.rmcp.is_none() {
            let target = (self.config.address.as_str(), self.config.port);
            let mut rmcp = Rmcp::new(target, self.timeout)
                .map_err(|e| format!("cannot open a socket to {}: {e}", self.config.endpoint()))?;
            let (user, password) = (&self.config.user, self.password.expose().as_bytes());
            guarded(|| rmcp.activate(true, Some(user), Some(password)))?
                .map_err(|e| activation_text(&e, self.timeout))?;
            self.rmcp = Some(rmcp);
        }
        Ok(self.rmcp.as_mut().expect("just set"))
    }

    /// One request on the session; a failure closes it (the next request
    /// opens a new one).
    fn request(&mut self, netfn: u8, cmd: u8, data: Vec<u8>) -> Result<Vec<u8>, String> {
        let timeout = self.timeout;
        let rmcp = self.connect()?;
        let mut req = Request::new(
            IpmiMessage::new_raw(netfn, cmd, data),
            RequestTargetAddress::Bmc(LogicalUnit::Zero),
        );
        let answer = match guarded(|| rmcp.send_recv(&mut req)) {
            Ok(answer) => answer,
            Err(e) => {
                self.rmcp = None;
                return Err(e);
            }
        };
        match answer {
            Ok(resp) if resp.cc() == 0 => Ok(resp.data().to_vec()),
            Ok(resp) => Err(format!(
                "the BMC refused NetFn 0x{netfn:02x} command 0x{cmd:02x} (completion code 0x{:02x})",
                resp.cc()
            )),
            Err(e) => {
                self.rmcp = None;
                Err(request_text(&e, timeout))
            }
        }
    }

    /// Like [`Session::request`], on a fresh session once if the one kept
    /// open failed (the BMC may have ended it).
    fn request_again(&mut self, netfn: u8, cmd: u8, data: Vec<u8>) -> Result<Vec<u8>, String> {
        let had_session = self.rmcp.is_some();
        match self.request(netfn, cmd, data.clone()) {
            Err(_) if had_session && self.rmcp.is_none() => self.request(netfn, cmd, data),
            other => other,
        }
    }

    /// Get Chassis Status: whether the chassis has power.
    pub fn power_on(&mut self) -> Result<bool, String> {
        let data = self.request_again(NETFN_CHASSIS, GET_CHASSIS_STATUS, Vec::new())?;
        chassis_power(&data)
    }

    /// One poll of the BMC heartbeat path.
    pub fn read(&mut self) -> BmcReading {
        match self.power_on() {
            Ok(true) => BmcReading::On,
            Ok(false) => BmcReading::Off,
            Err(e) => BmcReading::Unreachable(e),
        }
    }

    /// Chassis Control power down, then Get Chassis Status until it says
    /// the power is off, before `deadline`.
    pub fn power_off_confirmed(&mut self, deadline: Instant) -> Result<(), String> {
        self.request_again(NETFN_APP, SET_SESSION_PRIVILEGE, vec![PRIVILEGE_OPERATOR])
            .map_err(|e| format!("cannot raise the session to Operator: {e}"))?;
        self.request(NETFN_CHASSIS, CHASSIS_CONTROL, vec![POWER_DOWN])
            .map_err(|e| format!("chassis power off: {e}"))?;
        loop {
            let last = match self.power_on() {
                Ok(false) => return Ok(()),
                Ok(true) => "the BMC still says the power is on".to_string(),
                Err(e) => e,
            };
            let now = Instant::now();
            if now + CONFIRM_EVERY >= deadline {
                return Err(format!("the power off was not confirmed in time ({last})"));
            }
            // A thread of the blocking pool, waiting for the chassis.
            thread::sleep(CONFIRM_EVERY);
        }
    }
}

/// `exchange` (a call into ipmi-rs, which parses what the BMC sent), a
/// panic in it becoming an error ([`crate::guarded`]): an answer the
/// library cannot read must not end the daemon, the poller's thread or a
/// forced stop. (The panics fuzzing found are fixed in
/// actors/vendor/ipmi-rs; this covers any other.)
fn guarded<T>(exchange: impl FnOnce() -> T) -> Result<T, String> {
    crate::guarded::call(exchange).map_err(|panic| {
        tracing::error!("ipmi-rs failed on a BMC's answer: {panic}");
        "the BMC's answer could not be read (the IPMI library failed on it)".into()
    })
}

/// Get Chassis Status's first byte, bit 0: "power is on".
pub fn chassis_power(data: &[u8]) -> Result<bool, String> {
    match data.first() {
        Some(b) => Ok(b & 0x01 != 0),
        None => Err("the BMC's Get Chassis Status answer is empty".into()),
    }
}

fn io_timeout(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    )
}

fn activation_text(e: &ActivationError, timeout: Duration) -> String {
    match e {
        ActivationError::PongReceive(io) if io_timeout(io) => {
            format!("no answer within {} ms", timeout.as_millis())
        }
        ActivationError::PingSend(io) | ActivationError::PongReceive(io) => {
            format!("no answer: {}", crate::model::host::io_text(io))
        }
        ActivationError::V2_0(v) => {
            // Debug of ipmi-rs's own errors: names like
            // ServerAuthenticationFailed, never the password.
            format!("RMCP+ session refused: {v:?}")
        }
        other => format!("IPMI session failed: {other:?}"),
    }
}

fn request_text(e: &RmcpIpmiError, timeout: Duration) -> String {
    match e {
        RmcpIpmiError::Receive(RmcpIpmiReceiveError::Io(io)) if io_timeout(io) => {
            format!("no answer within {} ms", timeout.as_millis())
        }
        RmcpIpmiError::Receive(RmcpIpmiReceiveError::Io(io)) => crate::model::host::io_text(io),
        other => format!("IPMI request failed: {other:?}"),
    }
}

/// A poll's end, for the coordinator (then the brain's `Input::Bmc`).
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct BmcReport {
    pub server: String,
    pub reading: BmcReading,
    /// When the question was sent (the brain's clock).
    pub asked: Duration,
}

/// A poller thread of one peer's BMC; it ends when this is dropped.
pub struct BmcPoller {
    _stop: mpsc::Sender<()>,
}

/// Starts polling `server`'s BMC every `config.interval_ms`; `report`
/// gets each poll's end and returns false once nobody listens any more.
pub fn spawn_poller(
    server: String,
    config: BmcConfig,
    report: impl Fn(BmcReport) -> bool + Send + 'static,
) -> Result<BmcPoller, String> {
    let password = load_password(&config)?;
    let interval = Duration::from_millis(config.interval_ms.into());
    let timeout = Duration::from_millis(config.timeout_ms.into());
    let (stop, stopped) = mpsc::channel::<()>();
    let name = format!("bmc-{server}");
    let what = format!("cannot start the BMC poller of server {server}");
    thread::Builder::new()
        .name(name)
        .spawn(move || {
            let mut session = Session::new(config, password, timeout);
            let mut next = Instant::now();
            loop {
                let asked = crate::heartbeat::since_start();
                let reading = session.read();
                let report_ok = report(BmcReport {
                    server: server.clone(),
                    reading,
                    asked,
                });
                if !report_ok {
                    return;
                }
                next += interval;
                let now = Instant::now();
                if next < now {
                    // A slow answer: the next poll goes at once, not in a burst.
                    next = now;
                }
                match stopped.recv_timeout(next - now) {
                    Err(mpsc::RecvTimeoutError::Timeout) => {}
                    _ => return,
                }
            }
        })
        .map_err(|e| format!("{what}: {e}"))?;
    Ok(BmcPoller { _stop: stop })
}

/// The forced stop by BMC of `server` (its BMC settings `config`) within
/// `timeout`: Ok once its BMC says the power is off.
pub async fn forced_stop(
    server: &str,
    config: Option<BmcConfig>,
    timeout: Duration,
) -> Result<(), String> {
    let Some(config) = config else {
        return Err(format!("server {server} has no BMC configured"));
    };
    let password = load_password(&config)?;
    let endpoint = config.endpoint();
    let deadline = Instant::now() + timeout;
    let per_request = Duration::from_millis(config.timeout_ms.into()).min(timeout);
    let work = tokio::task::spawn_blocking(move || {
        Session::new(config, password, per_request).power_off_confirmed(deadline)
    });
    match tokio::time::timeout(timeout, work).await {
        Ok(Ok(result)) => result.map_err(|e| format!("BMC {endpoint}: {e}")),
        Ok(Err(e)) => Err(format!("BMC {endpoint}: the IPMI exchange failed: {e}")),
        Err(_) => Err(format!(
            "BMC {endpoint}: no confirmed power off within {} s",
            timeout.as_secs()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chassis_status_power_bit() {
        assert_eq!(chassis_power(&[0x01, 0x00, 0x40]), Ok(true));
        assert_eq!(chassis_power(&[0x60, 0x10, 0x00]), Ok(false));
        assert_eq!(chassis_power(&[0x21]), Ok(true));
        assert!(chassis_power(&[]).is_err());
    }

    #[test]
    fn a_missing_password_file_is_named_never_read_aloud() {
        let c = BmcConfig {
            address: "192.0.2.1".into(),
            port: 623,
            user: "admin".into(),
            password: None,
            password_file: Some("/nonexistent/bmc.pw".into()),
            interval_ms: 1000,
            timeout_ms: 2000,
        };
        let e = load_password(&c).unwrap_err();
        assert!(e.contains("/nonexistent/bmc.pw"), "{e}");
    }

    #[test]
    fn nothing_answering_is_unreachable_within_the_timeout() {
        // A UDP port on loopback that nobody reads: no pong.
        let quiet = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        let port = quiet.local_addr().expect("addr").port();
        let c = BmcConfig {
            address: "127.0.0.1".into(),
            port,
            user: "admin".into(),
            password: Some(Secret::new("hunter2")),
            password_file: None,
            interval_ms: 1000,
            timeout_ms: 200,
        };
        let started = Instant::now();
        let mut s = Session::new(c, Secret::new("hunter2"), Duration::from_millis(200));
        match s.read() {
            BmcReading::Unreachable(e) => {
                assert!(!e.contains("hunter2"), "{e}");
                assert!(e.contains("200 ms"), "{e}");
            }
            other => panic!("{other:?}"),
        }
        assert!(started.elapsed() < Duration::from_secs(2));
    }
}
