//! The etcd witness driver against a real etcd (Debian's `etcd-server`),
//! started by each test on loopback, free ports, a temporary data folder.
//!
//! - two drivers, one vote: never two claims at once (a claim: from a
//!   report saying `holds` to its `until`), and when the holder's driver is
//!   dropped the other gets the vote after the holder's `until`, within the
//!   TTL and about a round;
//! - etcd frozen (SIGSTOP: no answer at all), thawed, then killed: the
//!   driver keeps reporting (`reachable: false`), its `until` never grows
//!   while etcd does not answer, and it takes the vote again once etcd is
//!   back;
//! - TLS with client certificates (made with `openssl`): a driver with a
//!   client certificate holds the vote, one without is refused.
//!
//! Without `etcd` (or `openssl` for the TLS test) a test skips
//! (tests/common/skip.rs).

#[path = "../../tests/common/skip.rs"]
mod skip;

use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use understudy_actors::heartbeat::since_start;
use understudy_actors::witness::etcd::{spawn, EtcdWitness, EtcdWitnessSettings};
use understudy_actors::witness::WitnessReport;

/// How long any awaited outcome may take before the test fails.
const DEADLINE: Duration = Duration::from_secs(20);

macro_rules! require {
    ($program:literal, $package:literal) => {
        if let Some(m) = skip::need_program($program, $package) {
            return m.skip();
        }
    };
}

/// A fresh folder under /tmp, removed on drop (kept when the test fails).
struct TestDir(PathBuf);

static COUNTER: AtomicUsize = AtomicUsize::new(0);

impl TestDir {
    fn new(tag: &str) -> TestDir {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let p = PathBuf::from(format!("/tmp/us-etcd-{tag}-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).unwrap();
        TestDir(p)
    }

    fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = fs::remove_dir_all(&self.0);
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// TLS files of etcd and its clients.
struct Pki {
    ca: PathBuf,
    server_cert: PathBuf,
    server_key: PathBuf,
    client_cert: PathBuf,
    client_key: PathBuf,
}

/// One etcd member on loopback; killed on drop.
struct Etcd {
    child: Child,
    endpoint: String,
    log: PathBuf,
}

impl Etcd {
    fn start(dir: &TestDir, pki: Option<&Pki>) -> Etcd {
        let (client, peer) = (free_port(), free_port());
        let scheme = if pki.is_some() { "https" } else { "http" };
        let endpoint = format!("{scheme}://127.0.0.1:{client}");
        let peer_url = format!("http://127.0.0.1:{peer}");
        let log = dir.join("etcd.log");
        let mut cmd = Command::new("etcd");
        cmd.arg("--name=witness")
            .arg(format!("--data-dir={}", dir.join("data").display()))
            .arg(format!("--listen-client-urls={endpoint}"))
            .arg(format!("--advertise-client-urls={endpoint}"))
            .arg(format!("--listen-peer-urls={peer_url}"))
            .arg(format!("--initial-advertise-peer-urls={peer_url}"))
            .arg(format!("--initial-cluster=witness={peer_url}"))
            .stdin(Stdio::null())
            .stdout(fs::File::create(&log).unwrap())
            .stderr(fs::File::options().append(true).open(&log).unwrap());
        if let Some(pki) = pki {
            cmd.arg(format!("--cert-file={}", pki.server_cert.display()))
                .arg(format!("--key-file={}", pki.server_key.display()))
                .arg(format!("--trusted-ca-file={}", pki.ca.display()))
                .arg("--client-cert-auth");
        }
        let child = cmd.spawn().expect("etcd starts");
        let etcd = Etcd {
            child,
            endpoint,
            log,
        };
        // Serving (a member of one elects itself at once).
        let start = since_start();
        while !etcd.log().contains("ready to serve client requests") {
            assert!(
                since_start() - start < DEADLINE,
                "etcd did not start:\n{}",
                etcd.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        etcd
    }

    fn signal(&self, signal: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.child.id() as i32), signal).unwrap();
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Every report of one driver, with the instant (daemon clock) it came.
#[derive(Clone, Default)]
struct Reports(Arc<Mutex<Vec<(Duration, WitnessReport)>>>);

impl Reports {
    fn sink(&self) -> impl FnMut(WitnessReport) + Send + 'static {
        let all = self.0.clone();
        move |r| all.lock().unwrap().push((since_start(), r))
    }

    fn all(&self) -> Vec<(Duration, WitnessReport)> {
        self.0.lock().unwrap().clone()
    }

    fn last(&self) -> Option<WitnessReport> {
        self.0.lock().unwrap().last().map(|(_, r)| r.clone())
    }

    fn count(&self) -> usize {
        self.0.lock().unwrap().len()
    }

    /// The latest `until` claimed so far (zero when none).
    fn max_until(&self) -> Duration {
        self.all()
            .iter()
            .filter(|(_, r)| r.holds)
            .map(|(_, r)| r.until)
            .max()
            .unwrap_or_default()
    }

    /// The claims: from a report saying `holds` to its `until`.
    fn claims(&self) -> Vec<(Duration, Duration)> {
        self.all()
            .iter()
            .filter(|(_, r)| r.holds)
            .map(|(at, r)| (*at, r.until))
            .collect()
    }
}

fn settings(endpoint: &str, ttl_secs: u32) -> EtcdWitnessSettings {
    EtcdWitnessSettings {
        endpoints: vec![endpoint.to_string()],
        prefix: "/understudy/test".into(),
        ttl_secs,
        ca_file: None,
        cert_file: None,
        key_file: None,
    }
}

fn driver(settings: &EtcdWitnessSettings, server: &str) -> (EtcdWitness, Reports) {
    let reports = Reports::default();
    let witness = spawn(settings.clone(), server, reports.sink()).expect("settings are valid");
    (witness, reports)
}

/// Waits (the driver's task runs meanwhile) until `done`, at most DEADLINE.
async fn wait_for(what: &str, etcd: &Etcd, mut done: impl FnMut() -> bool) {
    let start = since_start();
    while !done() {
        if since_start() - start > DEADLINE {
            panic!("timed out waiting for {what}\netcd's log:\n{}", etcd.log());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// No two claims of different servers overlap.
fn assert_one_holder(a: &Reports, b: &Reports) {
    for (a_from, a_until) in a.claims() {
        for (b_from, b_until) in b.claims() {
            assert!(
                a_until <= b_from || b_until <= a_from,
                "two holders at once: [{a_from:?}, {a_until:?}) and [{b_from:?}, {b_until:?})"
            );
        }
    }
}

/// A TTL of 3 s: a round (1 s) that fails under load does not let the
/// vote lapse.
const TTL: u32 = 3;

/// etcd in `dir`, the settings of its drivers (TTL [`TTL`]), and n1's
/// driver once it holds the vote.
async fn etcd_and_holder(dir: &TestDir) -> (Etcd, EtcdWitnessSettings, EtcdWitness, Reports) {
    let etcd = Etcd::start(dir, None);
    let s = settings(&etcd.endpoint, TTL);
    let (n1, r1) = driver(&s, "n1");
    wait_for("n1 to hold the vote", &etcd, || {
        r1.last().is_some_and(|r| r.holds)
    })
    .await;
    (etcd, s, n1, r1)
}

#[actix_rt::test]
async fn one_vote_between_two_drivers_and_handover_after_until() {
    require!("etcd", "etcd-server");
    let dir = TestDir::new("vote");
    let (etcd, s, n1, r1) = etcd_and_holder(&dir).await;
    let (ttl, round) = (TTL, s.round_interval());
    let (n2, r2) = driver(&s, "n2");
    // Both run for a few seconds: n1 keeps the vote, n2 hears it is taken.
    let start = since_start();
    // (And for four claims: on a loaded machine the rounds run late.)
    wait_for("n1 to renew for 3 s", &etcd, || {
        since_start() - start > Duration::from_secs(3) && r1.claims().len() >= 4
    })
    .await;
    let last = r2.last().expect("n2 reported");
    assert!(
        !last.holds && last.reachable && last.error.is_none(),
        "{last:?}"
    );
    assert!(r1.all().iter().all(|(_, r)| r.holds), "{:?}", r1.all());
    // n1's until keeps moving on, and is never more than the TTL ahead.
    let claims = r1.claims();
    assert!(claims.len() >= 4, "{claims:?}");
    for (at, until) in &claims {
        assert!(*until > *at && *until - *at <= Duration::from_secs(ttl.into()));
    }
    assert_one_holder(&r1, &r2);

    // The holder's driver ends: no more keepalives.
    let stats = n1.stats();
    assert_eq!((stats.grants, stats.votes_won), (1, 1), "{stats:?}");
    drop(n1);
    let killed = since_start();
    let old_until = r1.max_until();
    wait_for("n2 to take the vote", &etcd, || {
        r2.last().is_some_and(|r| r.holds)
    })
    .await;
    let (taken, _) = r2.claims()[0];
    assert!(
        taken >= old_until,
        "n2 holds at {taken:?}, before n1's until {old_until:?}"
    );
    // etcd expires the lease TTL after n1's last keepalive (at most a round
    // before the kill), checks for expired leases every 500 ms, and n2
    // asks once a round.
    let bound = Duration::from_secs(ttl.into()) + round + Duration::from_millis(500) + round;
    eprintln!(
        "handover: n2 holds {:?} after n1 stopped, {:?} after n1's until (bound {bound:?})",
        taken - killed,
        taken - old_until
    );
    assert!(taken - killed <= bound, "{:?} > {bound:?}", taken - killed);
    assert_one_holder(&r1, &r2);
    assert_eq!(n2.stats().votes_won, 1);
}

/// An orderly stop: the holder's brain gives the vote up (campaign off),
/// its driver deletes it at a round run at once, and `hand_over` (the end
/// of the stop sequence) returns after the other driver has had a round to
/// take it: the vote changes hands long before the holder's lease would
/// have run out, and never held twice.
#[actix_rt::test]
async fn an_orderly_stop_hands_the_vote_over_before_the_lease_runs_out() {
    require!("etcd", "etcd-server");
    let dir = TestDir::new("handover");
    let (etcd, s, n1, r1) = etcd_and_holder(&dir).await;
    let round = s.round_interval();
    let (n2, r2) = driver(&s, "n2");
    wait_for("n2 to find the vote taken", &etcd, || {
        r2.last().is_some_and(|r| !r.holds && r.error.is_none())
    })
    .await;

    let asked = since_start();
    n1.set_campaign(false);
    let handed = n1.hand_over();
    handed.await;
    let returned = since_start();
    let lease_end = r1.max_until();
    let given_up = r1
        .all()
        .iter()
        .find(|(at, r)| *at >= asked && !r.holds)
        .map(|(at, _)| *at)
        .expect("n1 reported a round without the vote");
    wait_for("n2 to take the vote", &etcd, || {
        r2.last().is_some_and(|r| r.holds)
    })
    .await;
    let (taken, _) = r2.claims()[0];
    eprintln!(
        "hand-over: n1 gave the vote up {:?} after it was asked, hand_over returned {:?} after, \
         n2 holds {:?} after (n1's lease would have lasted {:?} after)",
        given_up - asked,
        returned - asked,
        taken - asked,
        lease_end.saturating_sub(asked)
    );
    // Deleted, not expired: taken before n1's lease could have run out.
    assert!(
        taken < lease_end,
        "n2 holds at {taken:?}, n1's lease lasted to {lease_end:?}"
    );
    // The wait is bounded: two rounds for the give-up, one and a half
    // after it (three times that for a loaded machine).
    let bound = 3 * (2 * round + round * 3 / 2);
    assert!(
        returned - asked <= bound,
        "{:?} > {bound:?}",
        returned - asked
    );
    // n1's claims end when it gives the vote up (its brain stops counting
    // the vote before it asks its driver to let it go): every claim of n2
    // begins after that, and n1 claims nothing more.
    assert!(
        r1.claims().iter().all(|(at, _)| *at < asked),
        "{:?}",
        r1.all()
    );
    assert!(
        r2.claims().iter().all(|(at, _)| *at > asked),
        "{:?}",
        r2.all()
    );
    assert_eq!(n2.stats().votes_won, 1);
}

#[actix_rt::test]
async fn etcd_frozen_then_killed_until_stops_growing() {
    use nix::sys::signal::Signal;
    require!("etcd", "etcd-server");
    let dir = TestDir::new("frozen");
    let (mut etcd, s, n1, r1) = etcd_and_holder(&dir).await;
    let round = s.round_interval();

    // Frozen: connections stay open, nothing answers.
    etcd.signal(Signal::SIGSTOP);
    let frozen = since_start();
    let until_before = r1.max_until();
    let seen = r1.count();
    wait_for("failed rounds past n1's until", &etcd, || {
        since_start() > until_before + round && r1.count() >= seen + 3
    })
    .await;
    let during: Vec<_> = r1.all().into_iter().skip(seen).collect();
    for (at, r) in &during {
        assert!(
            r.until <= until_before,
            "until grew while etcd was frozen: {r:?}"
        );
        if *at >= frozen + round {
            assert!(!r.reachable && r.error.is_some(), "{r:?}");
        }
        if *at >= until_before {
            assert!(!r.holds, "holds past its until: {r:?}");
        }
    }
    // The task did not hang on the frozen etcd: reports kept coming.
    let gaps = during.windows(2).map(|w| w[1].0 - w[0].0).max().unwrap();
    assert!(
        gaps <= round + round / 2,
        "a gap of {gaps:?} between reports"
    );

    // Thawed: n1 answers again and holds the vote again.
    etcd.signal(Signal::SIGCONT);
    let seen = r1.count();
    wait_for("n1 to hold the vote again", &etcd, || {
        r1.all()
            .iter()
            .skip(seen)
            .any(|(_, r)| r.holds && r.reachable)
    })
    .await;

    // Killed: refused connections, reports go on, until stays.
    etcd.kill();
    let until_before = r1.max_until();
    let seen = r1.count();
    wait_for("failed rounds after the kill", &etcd, || {
        r1.all()
            .iter()
            .skip(seen)
            .filter(|(_, r)| !r.reachable)
            .count()
            >= 3
    })
    .await;
    for (_, r) in r1.all().iter().skip(seen) {
        assert!(r.until <= until_before, "{r:?}");
    }
    let stats = n1.stats();
    assert!(stats.failed_rounds >= 6, "{stats:?}");
    assert!(stats.connects >= 3, "{stats:?}");
}

/// Makes a CA, etcd's server certificate (for 127.0.0.1) and a client
/// certificate with `openssl`.
fn make_pki(dir: &TestDir) -> Pki {
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(&dir.0)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let key = |name: &str| {
        run(&[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            name,
        ])
    };
    key("ca.key");
    run(&[
        "req",
        "-x509",
        "-new",
        "-key",
        "ca.key",
        "-subj",
        "/CN=understudy test CA",
        "-days",
        "2",
        "-out",
        "ca.pem",
    ]);
    let sign = |name: &str, cn: &str, ext: &str| {
        key(&format!("{name}.key"));
        run(&[
            "req",
            "-new",
            "-key",
            &format!("{name}.key"),
            "-subj",
            &format!("/CN={cn}"),
            "-out",
            &format!("{name}.csr"),
        ]);
        fs::write(dir.join(&format!("{name}.ext")), ext).unwrap();
        run(&[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            &format!("{name}.ext"),
            "-out",
            &format!("{name}.pem"),
        ]);
    };
    sign(
        "server",
        "etcd",
        "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
    );
    sign("client", "n1", "extendedKeyUsage=clientAuth\n");
    Pki {
        ca: dir.join("ca.pem"),
        server_cert: dir.join("server.pem"),
        server_key: dir.join("server.key"),
        client_cert: dir.join("client.pem"),
        client_key: dir.join("client.key"),
    }
}

#[actix_rt::test]
async fn tls_with_client_certificates() {
    require!("etcd", "etcd-server");
    require!("openssl", "openssl");
    let dir = TestDir::new("tls");
    let pki = make_pki(&dir);
    let etcd = Etcd::start(&dir, Some(&pki));
    let base = EtcdWitnessSettings {
        ca_file: Some(pki.ca.clone()),
        ..settings(&etcd.endpoint, 2)
    };

    // Without a client certificate etcd refuses the handshake.
    let (anonymous, ra) = driver(&base, "n2");
    wait_for("the anonymous driver's failed rounds", &etcd, || {
        ra.count() >= 2
    })
    .await;
    assert!(
        ra.all().iter().all(|(_, r)| !r.holds && r.error.is_some()),
        "{:?}",
        ra.all()
    );
    drop(anonymous);

    let with_cert = EtcdWitnessSettings {
        cert_file: Some(pki.client_cert.clone()),
        key_file: Some(pki.client_key.clone()),
        ..base
    };
    let (n1, r1) = driver(&with_cert, "n1");
    wait_for("n1 to hold the vote over TLS", &etcd, || {
        r1.last().is_some_and(|r| r.holds)
    })
    .await;
    assert!(
        r1.all().iter().all(|(_, r)| r.error.is_none()),
        "{:?}",
        r1.all()
    );
    // A missing file is reported by its name.
    let missing = EtcdWitnessSettings {
        key_file: Some(Path::new("/nonexistent/key.pem").to_path_buf()),
        ..with_cert
    };
    let (_broken, rb) = driver(&missing, "n3");
    wait_for("the broken driver's report", &etcd, || rb.count() >= 1).await;
    let r = rb.last().unwrap();
    assert!(
        !r.holds
            && r.error
                .as_deref()
                .is_some_and(|e| e.contains("/nonexistent/key.pem")),
        "{r:?}"
    );
    drop(n1);
}
