//! The peer link: one authenticated request and its response per TCP
//! connection.
//!
//! ```text
//! server -> client   Hello { nonce }            (16 fresh random bytes, hex)
//! client -> server   { from, nonce, body: Req }
//! server -> client   { nonce, body: Resp }
//! ```
//!
//! Every message is a sealed frame. The nonce ties the request to this
//! connection: a recorded request played back on another connection carries
//! a stale nonce and is refused as replayed; the same nonce in the answer
//! proves the answer is not an old one either. The server also requires the
//! sender to be one of the configured servers.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::frame::{self, open_json, seal_json, Refusal, Rejection, HEADER_LEN};

/// Unauthenticated connections per source address (see the limits above).
#[derive(Debug)]
struct Admission {
    peers: Vec<IpAddr>,
    pending: HashMap<IpAddr, usize>,
    strangers: usize,
}

impl Admission {
    fn new(peers: Vec<IpAddr>) -> Admission {
        Admission {
            peers,
            pending: HashMap::new(),
            strangers: 0,
        }
    }

    fn admit(&mut self, ip: IpAddr) -> bool {
        let peer = self.peers.contains(&ip);
        let n = self.pending.get(&ip).copied().unwrap_or(0);
        let ok = if peer {
            n < PENDING_PER_PEER
        } else {
            n < PENDING_PER_STRANGER && self.strangers < PENDING_STRANGERS
        };
        if ok {
            *self.pending.entry(ip).or_insert(0) += 1;
            if !peer {
                self.strangers += 1;
            }
        }
        ok
    }

    fn release(&mut self, ip: IpAddr) {
        if let Some(n) = self.pending.get_mut(&ip) {
            *n -= 1;
            if *n == 0 {
                self.pending.remove(&ip);
            }
            if !self.peers.contains(&ip) {
                self.strangers -= 1;
            }
        }
    }
}
use super::key::ClusterKey;

/// How long the server's answer may take to be taken.
const SERVER_IO_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a client may take, once connected, to send an authentic
/// request: a peer sends it at once, so a silent or slow stranger cannot
/// hold a connection for long.
const REQUEST_WAIT: Duration = Duration::from_secs(2);
/// Connections served at once; more are closed at once.
const MAX_CONNECTIONS: usize = 64;
/// Connections not yet authenticated, per address: from another server's
/// interconnect address, and from anywhere else (all strangers together
/// too). Unauthenticated traffic can so never take the slots of the
/// servers of the cluster.
const PENDING_PER_PEER: usize = 8;
const PENDING_PER_STRANGER: usize = 2;
const PENDING_STRANGERS: usize = 16;
pub(crate) const NONCE_BYTES: usize = 16;

#[derive(Serialize, Deserialize)]
struct Hello {
    nonce: String,
}

#[derive(Serialize)]
struct RequestOut<'a, Req> {
    from: &'a str,
    nonce: &'a str,
    body: &'a Req,
}

#[derive(Deserialize)]
pub(crate) struct RequestIn<Req> {
    pub(crate) from: String,
    nonce: String,
    pub(crate) body: Req,
}

#[derive(Serialize)]
struct ResponseOut<'a, Resp> {
    nonce: &'a str,
    body: &'a Resp,
}

#[derive(Deserialize)]
struct ResponseIn<Resp> {
    nonce: String,
    body: Resp,
}

/// What went wrong with one exchange.
pub(crate) enum Failure {
    /// The connection broke or timed out.
    Io(std::io::Error),
    /// A frame was dropped.
    Refused(Refusal),
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Self {
        Failure::Io(e)
    }
}

impl From<Refusal> for Failure {
    fn from(r: Refusal) -> Self {
        Failure::Refused(r)
    }
}

/// Reads one sealed frame (header, then exactly the rest it announces).
pub(crate) async fn read_frame<R: AsyncRead + Unpin>(r: &mut R) -> Result<Vec<u8>, Failure> {
    let mut header = [0u8; HEADER_LEN];
    r.read_exact(&mut header).await?;
    let total = frame::frame_len(&header)?;
    let mut buf = Vec::with_capacity(total.min(64 * 1024));
    buf.extend_from_slice(&header);
    // The buffer grows as bytes arrive: a header alone, announcing 16 MiB,
    // does not make us allocate them.
    let rest = (total - HEADER_LEN) as u64;
    let got = r.take(rest).read_to_end(&mut buf).await?;
    if (got as u64) < rest {
        return Err(Failure::Io(std::io::ErrorKind::UnexpectedEof.into()));
    }
    Ok(buf)
}

async fn write_frame<W: AsyncWrite + Unpin>(w: &mut W, frame: &[u8]) -> std::io::Result<()> {
    w.write_all(frame).await?;
    w.flush().await
}

fn new_nonce() -> std::io::Result<String> {
    let mut bytes = [0u8; NONCE_BYTES];
    super::random_bytes(&mut bytes)?;
    Ok(super::to_hex(&bytes))
}

/// An io error as a short cause ("connection refused").
fn io_cause(e: &std::io::Error) -> String {
    use std::io::ErrorKind::*;
    match e.kind() {
        UnexpectedEof => "connection closed before the answer".into(),
        ConnectionRefused | ConnectionReset | ConnectionAborted | HostUnreachable
        | NetworkUnreachable | AddrNotAvailable | BrokenPipe => e.kind().to_string(),
        _ => e.to_string(),
    }
}

/// "2 s", "1.5 s", "300 ms".
fn human(d: Duration) -> String {
    let ms = d.as_millis();
    if ms >= 1000 && ms.is_multiple_of(1000) {
        format!("{} s", ms / 1000)
    } else if ms >= 1000 {
        format!("{:.1} s", d.as_secs_f64())
    } else {
        format!("{ms} ms")
    }
}

/// Longest wait for a connection and the peer's greeting.
const GREETING_WAIT: Duration = Duration::from_secs(3);

/// Sends `req` to the first address that answers (addresses in path
/// order), each attempt bounded by `timeout` for the whole exchange. The
/// error names every address tried and why it failed.
pub async fn call<Req: Serialize, Resp: DeserializeOwned>(
    key: &ClusterKey,
    from: &str,
    addrs: &[SocketAddr],
    req: &Req,
    timeout: Duration,
) -> Result<Resp, String> {
    if addrs.is_empty() {
        return Err("no address to call".into());
    }
    let mut causes = Vec::new();
    for &addr in addrs {
        match tokio::time::timeout(timeout, exchange(key, from, addr, req)).await {
            Ok(Ok(resp)) => return Ok(resp),
            Ok(Err(cause)) => causes.push(format!("{addr}: {cause}")),
            Err(_) => causes.push(format!("{addr}: no answer within {}", human(timeout))),
        }
    }
    Err(causes.join("; "))
}

async fn exchange<Req: Serialize, Resp: DeserializeOwned>(
    key: &ClusterKey,
    from: &str,
    addr: SocketAddr,
    req: &Req,
) -> Result<Resp, String> {
    // A live peer accepts and greets at once: an address that does not is
    // given up quickly, whatever the wait for the answer itself.
    let greeted = tokio::time::timeout(GREETING_WAIT, async {
        let mut stream = TcpStream::connect(addr).await.map_err(|e| io_cause(&e))?;
        let _ = stream.set_nodelay(true);
        // A peer that dies during a long request (a group start) without
        // closing the connection (power loss, cable) is noticed in ~11 s.
        let _ = socket2::SockRef::from(&stream).set_tcp_keepalive(
            &socket2::TcpKeepalive::new()
                .with_time(Duration::from_secs(5))
                .with_interval(Duration::from_secs(2))
                .with_retries(3),
        );
        let hello = match read_frame(&mut stream).await {
            Ok(f) => f,
            Err(Failure::Io(e)) => return Err(io_cause(&e)),
            Err(Failure::Refused(r)) => return Err(format!("greeting {r}")),
        };
        Ok((stream, hello))
    })
    .await
    .map_err(|_| format!("not greeted within {}", human(GREETING_WAIT)))?;
    let (mut stream, hello) = greeted?;
    let (nonce, hello_forged) = greeting(key, &hello)?;
    let out = seal_json(
        key,
        &RequestOut {
            from,
            nonce: &nonce,
            body: req,
        },
    )?;
    let sent = write_frame(&mut stream, &out).await;
    if let Some(r) = hello_forged {
        return Err(format!("greeting {r}"));
    }
    sent.map_err(|e| io_cause(&e))?;
    let answer = match read_frame(&mut stream).await {
        Ok(f) => f,
        Err(Failure::Io(e)) => return Err(io_cause(&e)),
        Err(Failure::Refused(r)) => return Err(format!("answer {r}")),
    };
    check_answer(key, &nonce, &answer)
}

/// Serves the peer link on `listener` until the runtime stops: for each
/// connection, checks the request (authentic, from one of `peers`, carrying
/// this connection's nonce), runs `handler` and sends its answer. Dropped
/// requests go to `on_reject` (with the client's address in the detail) and
/// close the connection without an answer. Spawns on the current actix
/// runtime (or tokio LocalSet): the handler's future need not be `Send`.
pub fn serve<Req, Resp, H, Fut>(
    listener: TcpListener,
    key: Arc<ClusterKey>,
    peers: Vec<String>,
    peer_addrs: Vec<IpAddr>,
    handler: H,
    on_reject: Box<dyn Fn(Rejection, String)>,
) where
    Req: DeserializeOwned + 'static,
    Resp: Serialize + 'static,
    H: Fn(String, Req) -> Fut + 'static,
    Fut: Future<Output = Resp> + 'static,
{
    let handler = Rc::new(handler);
    let on_reject: Rc<dyn Fn(Rejection, String)> = Rc::from(on_reject);
    let peers = Rc::new(peers);
    let active = Rc::new(Cell::new(0usize));
    let admission = Rc::new(RefCell::new(Admission::new(peer_addrs)));
    actix_rt::spawn(async move {
        loop {
            let (stream, source) = match listener.accept().await {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!("peer link: accept failed: {e}");
                    // Out of descriptors, say: do not spin on it.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            if active.get() >= MAX_CONNECTIONS {
                tracing::debug!("peer link: {source}: closed, {MAX_CONNECTIONS} connections busy");
                continue;
            }
            if !admission.borrow_mut().admit(source.ip()) {
                on_reject(
                    Rejection::Garbled,
                    format!(
                        "{source}: closed at once, too many unauthenticated connections from it"
                    ),
                );
                continue;
            }
            active.set(active.get() + 1);
            let (key, peers, handler, on_reject, active, admission) = (
                key.clone(),
                peers.clone(),
                handler.clone(),
                on_reject.clone(),
                active.clone(),
                admission.clone(),
            );
            actix_rt::spawn(async move {
                let ip = source.ip();
                let authenticated = || admission.borrow_mut().release(ip);
                let result = serve_one(stream, &key, &peers, &*handler, authenticated).await;
                active.set(active.get() - 1);
                match result {
                    Ok(()) => {}
                    Err(Failure::Refused(r)) => {
                        on_reject(r.reason, format!("{source}: {}", r.detail))
                    }
                    Err(Failure::Io(e)) => tracing::debug!("peer link: {source}: {e}"),
                }
            });
        }
    });
}

/// The request in `frame` if it is authentic, from one of `peers` and
/// bound to this connection's `nonce`.
pub(crate) fn check_request<Req: DeserializeOwned>(
    key: &ClusterKey,
    peers: &[String],
    nonce: &str,
    frame: &[u8],
) -> Result<RequestIn<Req>, Refusal> {
    let request: RequestIn<Req> = open_json(key, frame)?;
    if !peers.contains(&request.from) {
        return Err(Refusal::new(
            Rejection::Garbled,
            format!(
                "request from {:?}, not a server of this cluster",
                request.from
            ),
        ));
    }
    if request.nonce != nonce {
        return Err(Refusal::new(
            Rejection::Replayed,
            format!(
                "request from {} carries another connection's nonce",
                request.from
            ),
        ));
    }
    Ok(request)
}

/// The nonce of the server's greeting `hello`, with the refusal to report
/// after sending the request anyway when the greeting is forged (see
/// `exchange`); `Err` when the greeting is unusable.
pub(crate) fn greeting(
    key: &ClusterKey,
    hello: &[u8],
) -> Result<(String, Option<Refusal>), String> {
    match open_json::<Hello>(key, hello) {
        Ok(h) => Ok((h.nonce, None)),
        // Another cluster key: still send the request (sealed with ours, so
        // useless to whoever answered) so the other side sees and counts the
        // forged traffic too. The greeting's framing already passed, and a
        // forged nonce gains nothing: the request only fits that connection.
        Err(r) if r.reason == Rejection::Forged => {
            let payload = hello
                .get(HEADER_LEN..hello.len().saturating_sub(frame::MAC_LEN))
                .unwrap_or_default();
            let nonce = serde_json::from_slice::<Hello>(payload)
                .map(|h| h.nonce)
                .unwrap_or_default();
            Ok((nonce, Some(r)))
        }
        Err(r) => Err(format!("greeting {r}")),
    }
}

/// The body of the answer in `frame`, if it is authentic and carries this
/// connection's `nonce`.
pub(crate) fn check_answer<Resp: DeserializeOwned>(
    key: &ClusterKey,
    nonce: &str,
    frame: &[u8],
) -> Result<Resp, String> {
    let resp: ResponseIn<Resp> = open_json(key, frame).map_err(|r| format!("answer {r}"))?;
    if resp.nonce != nonce {
        return Err("answer replayed: it carries another connection's nonce".into());
    }
    Ok(resp.body)
}

async fn serve_one<Req, Resp, H, Fut>(
    mut stream: TcpStream,
    key: &ClusterKey,
    peers: &[String],
    handler: &H,
    authenticated: impl FnOnce(),
) -> Result<(), Failure>
where
    Req: DeserializeOwned,
    Resp: Serialize,
    H: Fn(String, Req) -> Fut,
    Fut: Future<Output = Resp>,
{
    let _ = stream.set_nodelay(true);
    // The pending slot is given back when the request is authentic, or
    // when the connection ends before (the guard below).
    let mut authenticated = Some(authenticated);
    let checked = async {
        let nonce = new_nonce()?;
        let request = tokio::time::timeout(REQUEST_WAIT, async {
            let hello = seal_json(
                key,
                &Hello {
                    nonce: nonce.clone(),
                },
            )
            .map_err(std::io::Error::other)?;
            write_frame(&mut stream, &hello).await?;
            read_frame(&mut stream).await
        })
        .await
        .map_err(|_| {
            std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("no request within {}", human(REQUEST_WAIT)),
            )
        })??;
        let request = check_request::<Req>(key, peers, &nonce, &request)?;
        Ok::<_, Failure>((nonce, request))
    };
    let checked = checked.await;
    if let Some(release) = authenticated.take() {
        release();
    }
    let (nonce, request) = checked?;
    let resp = handler(request.from, request.body).await;
    let answer = seal_json(
        key,
        &ResponseOut {
            nonce: &nonce,
            body: &resp,
        },
    )
    .map_err(std::io::Error::other)?;
    tokio::time::timeout(SERVER_IO_TIMEOUT, write_frame(&mut stream, &answer))
        .await
        .map_err(|_| {
            std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("answer not taken within {}", human(SERVER_IO_TIMEOUT)),
            )
        })??;
    // Let the client read to the end before the socket goes away.
    let _ = stream.shutdown().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::mpsc;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Ask {
        n: u32,
    }

    type Rejects = mpsc::UnboundedReceiver<(Rejection, String)>;

    fn key(b: u8) -> Arc<ClusterKey> {
        Arc::new(ClusterKey::from_bytes([b; 32]))
    }

    /// A server answering "FROM:N" to `Ask { n }`, and what it rejects.
    async fn server(key: Arc<ClusterKey>) -> (SocketAddr, Rejects) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = mpsc::unbounded_channel();
        serve(
            listener,
            key,
            vec!["a".into(), "b".into()],
            vec!["127.0.0.1".parse().unwrap()],
            |from: String, req: Ask| async move { format!("{from}:{}", req.n) },
            Box::new(move |reason, detail| {
                let _ = tx.send((reason, detail));
            }),
        );
        (addr, rx)
    }

    /// An address nobody listens on.
    async fn refused_addr() -> SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        l.local_addr().unwrap()
    }

    const T: Duration = Duration::from_secs(5);

    #[actix_rt::test]
    async fn request_and_answer() {
        let k = key(1);
        let (addr, _rejects) = server(k.clone()).await;
        let r: String = call(&k, "a", &[addr], &Ask { n: 7 }, T).await.unwrap();
        assert_eq!(r, "a:7");
        // Connections are independent: a second call works the same.
        let r: String = call(&k, "b", &[addr], &Ask { n: 8 }, T).await.unwrap();
        assert_eq!(r, "b:8");
    }

    #[actix_rt::test]
    async fn wrong_key_fails_on_both_sides() {
        let (addr, mut rejects) = server(key(1)).await;
        let e = call::<_, String>(&key(2), "a", &[addr], &Ask { n: 1 }, T)
            .await
            .unwrap_err();
        assert!(e.starts_with(&format!("{addr}: greeting forged")), "{e}");
        let (reason, detail) = rejects.recv().await.unwrap();
        assert_eq!(reason, Rejection::Forged);
        assert!(detail.starts_with("127.0.0.1:"), "{detail}");
    }

    #[actix_rt::test]
    async fn unknown_sender_is_refused() {
        let k = key(1);
        let (addr, mut rejects) = server(k.clone()).await;
        let e = call::<_, String>(&k, "mallory", &[addr], &Ask { n: 1 }, T)
            .await
            .unwrap_err();
        assert!(e.contains("connection closed before the answer"), "{e}");
        let (reason, detail) = rejects.recv().await.unwrap();
        assert_eq!(reason, Rejection::Garbled);
        assert!(detail.contains("\"mallory\""), "{detail}");
    }

    #[actix_rt::test]
    async fn stale_nonce_is_replayed_and_garbage_is_garbled() {
        let k = key(1);
        let (addr, mut rejects) = server(k.clone()).await;

        // A request made for another connection.
        let mut s = TcpStream::connect(addr).await.unwrap();
        let hello = read_frame(&mut s).await.ok().unwrap();
        let hello: Hello = open_json(&k, &hello).unwrap();
        let stale = seal_json(
            &k,
            &RequestOut {
                from: "a",
                nonce: "00112233445566778899aabbccddeeff",
                body: &Ask { n: 1 },
            },
        )
        .unwrap();
        assert_ne!(hello.nonce, "00112233445566778899aabbccddeeff");
        write_frame(&mut s, &stale).await.unwrap();
        let (reason, _) = rejects.recv().await.unwrap();
        assert_eq!(reason, Rejection::Replayed);
        // Closed without an answer.
        let mut rest = Vec::new();
        s.read_to_end(&mut rest).await.unwrap();
        assert!(rest.is_empty());

        let mut s = TcpStream::connect(addr).await.unwrap();
        read_frame(&mut s).await.ok().unwrap();
        s.write_all(b"GET / HTTP/1.0\r\n\r\n").await.unwrap();
        let (reason, detail) = rejects.recv().await.unwrap();
        assert_eq!(reason, Rejection::Garbled);
        assert!(detail.contains("magic"), "{detail}");
    }

    #[actix_rt::test]
    async fn falls_through_to_the_next_address() {
        let k = key(1);
        let (addr, _rejects) = server(k.clone()).await;
        let refused = refused_addr().await;
        let r: String = call(&k, "a", &[refused, addr], &Ask { n: 3 }, T)
            .await
            .unwrap();
        assert_eq!(r, "a:3");

        let other = refused_addr().await;
        let e = call::<_, String>(&k, "a", &[refused, other], &Ask { n: 3 }, T)
            .await
            .unwrap_err();
        assert_eq!(
            e,
            format!("{refused}: connection refused; {other}: connection refused")
        );
        assert_eq!(
            call::<_, String>(&k, "a", &[], &Ask { n: 3 }, T)
                .await
                .unwrap_err(),
            "no address to call"
        );
    }

    #[actix_rt::test]
    async fn a_silent_server_times_out() {
        let k = key(1);
        // Connections complete in the backlog, but nobody ever greets.
        let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let silent_addr = silent.local_addr().unwrap();
        let (addr, _rejects) = server(k.clone()).await;
        let timeout = Duration::from_millis(300);
        let e = call::<_, String>(&k, "a", &[silent_addr], &Ask { n: 1 }, timeout)
            .await
            .unwrap_err();
        assert_eq!(e, format!("{silent_addr}: no answer within 300 ms"));
        let r: String = call(&k, "a", &[silent_addr, addr], &Ask { n: 2 }, timeout)
            .await
            .unwrap();
        assert_eq!(r, "a:2");
        drop(silent);
    }

    #[test]
    fn strangers_get_few_unauthenticated_slots_and_peers_keep_theirs() {
        let peer: IpAddr = "198.51.100.2".parse().unwrap();
        let mut a = Admission::new(vec![peer]);
        let stranger = |i: u8| IpAddr::from([203, 0, 113, i]);
        assert!(a.admit(stranger(1)) && a.admit(stranger(1)));
        assert!(!a.admit(stranger(1)), "two per stranger");
        for i in 2..=8 {
            assert!(a.admit(stranger(i)) && a.admit(stranger(i)));
        }
        assert!(!a.admit(stranger(9)), "sixteen strangers in all");
        for _ in 0..PENDING_PER_PEER {
            assert!(a.admit(peer), "the peer's slots are its own");
        }
        assert!(!a.admit(peer));
        a.release(stranger(1));
        assert!(a.admit(stranger(9)));
        a.release(peer);
        assert!(a.admit(peer));
    }

    #[actix_rt::test]
    async fn idle_strangers_cannot_starve_a_peer() {
        let (addr, mut rejects) = server(key(1)).await;
        // More connections than the link serves at once, from another
        // address, that never send a thing (the lab's attack: 64).
        let mut idle = Vec::new();
        for _ in 0..MAX_CONNECTIONS + 6 {
            let sock = tokio::net::TcpSocket::new_v4().unwrap();
            sock.bind("127.0.0.2:0".parse().unwrap()).unwrap();
            if let Ok(c) = sock.connect(addr).await {
                idle.push(c);
            }
        }
        // A peer's request is answered at once all the same.
        let started = std::time::Instant::now();
        let answer: String = call(&key(1), "a", &[addr], &Ask { n: 7 }, T).await.unwrap();
        assert_eq!(answer, "a:7");
        assert!(started.elapsed() < REQUEST_WAIT, "{:?}", started.elapsed());
        // The strangers over the limit were turned away and counted.
        let (reason, detail) = rejects.recv().await.unwrap();
        assert_eq!(reason, Rejection::Garbled);
        assert!(detail.contains("too many unauthenticated"), "{detail}");
        drop(idle);
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(human(Duration::from_secs(2)), "2 s");
        assert_eq!(human(Duration::from_millis(1500)), "1.5 s");
        assert_eq!(human(Duration::from_millis(300)), "300 ms");
    }
}
