//! The control socket server. Each connection carries one request line and
//! gets one response line. The peer's credentials (SO_PEERCRED, plus its
//! supplementary groups from /proc) decide whether it may run mutating
//! commands: root, or a member of the configured admin group.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use actix::prelude::*;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::watch;

use super::protocol::{Request, Response, MAX_REQUEST_BYTES, PROTOCOL_VERSION};
use crate::coordinator::{Control, Coordinator, MalformedRequest};

/// How long a client may take to send its request.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
pub struct Access {
    /// Group owning the socket (its members may connect and read).
    pub socket_gid: Option<u32>,
    /// Admin group: its members may run mutating commands.
    pub admin: Option<(String, u32)>,
}

/// Binds the socket with mode 0660 (owner root, group `socket_gid`).
/// Must run inside the actix runtime that will serve it.
pub fn bind(path: &Path, access: &Access) -> std::io::Result<UnixListener> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))?;
    if let Some(gid) = access.socket_gid {
        nix::unistd::chown(path, None, Some(nix::unistd::Gid::from_raw(gid)))
            .map_err(std::io::Error::from)?;
    }
    Ok(listener)
}

/// Serves connections until the system stops. `inflight` counts connections
/// being served, so the daemon can let the last responses out before exiting.
pub fn serve(
    listener: UnixListener,
    coordinator: Addr<Coordinator>,
    access: Access,
    inflight: watch::Sender<usize>,
    path: PathBuf,
) {
    actix_rt::spawn(async move {
        loop {
            let stream = match listener.accept().await {
                Ok((s, _)) => s,
                Err(e) => {
                    tracing::warn!("control socket {}: accept failed: {e}", path.display());
                    continue;
                }
            };
            inflight.send_modify(|n| *n += 1);
            let coordinator = coordinator.clone();
            let access = access.clone();
            let inflight = inflight.clone();
            actix_rt::spawn(async move {
                if let Err(e) = handle(stream, &coordinator, &access).await {
                    tracing::debug!("control connection: {e}");
                }
                inflight.send_modify(|n| *n -= 1);
            });
        }
    });
}

/// Who is calling: uid, primary gid and supplementary groups.
struct Caller {
    uid: u32,
    gid: u32,
    pid: Option<i32>,
    groups: Vec<u32>,
}

impl Caller {
    fn describe(&self) -> String {
        let name = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(self.uid))
            .ok()
            .flatten()
            .map(|u| u.name)
            .unwrap_or_else(|| "?".into());
        match self.pid {
            Some(pid) => format!("uid {} ({name}), pid {pid}", self.uid),
            None => format!("uid {} ({name})", self.uid),
        }
    }

    fn in_group(&self, gid: u32) -> bool {
        self.gid == gid || self.groups.contains(&gid)
    }
}

/// Supplementary groups of a process, from /proc/PID/status.
fn supplementary_groups(pid: i32) -> Vec<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| l.strip_prefix("Groups:")).map(|g| {
                g.split_whitespace()
                    .filter_map(|x| x.parse().ok())
                    .collect()
            })
        })
        .unwrap_or_default()
}

/// A request line refused before it reaches the coordinator: the answer,
/// and whether it counts as malformed.
pub(crate) struct Refused {
    pub(crate) response: Response,
    pub(crate) malformed: bool,
}

/// The request in one line read from the socket (at most
/// `MAX_REQUEST_BYTES + 1` bytes, so an overlong line is seen as such).
pub(crate) fn read_request(line: &[u8]) -> Result<Request, Refused> {
    if line.len() > MAX_REQUEST_BYTES {
        return Err(Refused {
            response: Response::Error {
                message: format!("request longer than {MAX_REQUEST_BYTES} bytes"),
            },
            malformed: true,
        });
    }
    match serde_json::from_slice::<Request>(line) {
        Err(e) => Err(Refused {
            response: Response::Error {
                message: format!("malformed request: {e}"),
            },
            malformed: true,
        }),
        Ok(req) if req.version != PROTOCOL_VERSION => Err(Refused {
            response: Response::Error {
                message: format!(
                    "protocol version {} is not supported (this daemon speaks version {PROTOCOL_VERSION}); use the understudy binary that matches the daemon",
                    req.version
                ),
            },
            malformed: false,
        }),
        Ok(req) => Ok(req),
    }
}

async fn handle(
    stream: UnixStream,
    coordinator: &Addr<Coordinator>,
    access: &Access,
) -> std::io::Result<()> {
    let cred = stream.peer_cred()?;
    // /proc and the user database are read off the actors' thread.
    let (caller, by) = tokio::task::spawn_blocking(move || {
        let caller = Caller {
            uid: cred.uid(),
            gid: cred.gid(),
            pid: cred.pid(),
            groups: cred.pid().map(supplementary_groups).unwrap_or_default(),
        };
        let by = caller.describe();
        (caller, by)
    })
    .await
    .map_err(std::io::Error::other)?;
    let (read, mut write) = stream.into_split();
    let mut line = Vec::new();
    let mut reader = BufReader::new(read).take(MAX_REQUEST_BYTES as u64 + 1);
    let read = tokio::time::timeout(READ_TIMEOUT, reader.read_until(b'\n', &mut line)).await;
    let response = match read {
        Err(_) => {
            coordinator.do_send(MalformedRequest);
            Response::Error {
                message: format!("no request within {} s", READ_TIMEOUT.as_secs()),
            }
        }
        Ok(Err(e)) => return Err(e),
        // Closed without a byte: a probe (a second `run` checking whether a
        // daemon listens), not a request.
        Ok(Ok(0)) => return Ok(()),
        Ok(Ok(_)) => match read_request(&line) {
            Err(Refused {
                response,
                malformed,
            }) => {
                if malformed {
                    coordinator.do_send(MalformedRequest);
                }
                response
            }
            Ok(req) => {
                let admin = caller.uid == 0
                    || access
                        .admin
                        .as_ref()
                        .is_some_and(|(_, gid)| caller.in_group(*gid));
                if req.command.is_mutating() && !admin {
                    let who = match &access.admin {
                        Some((name, _)) => format!("root or a member of group {name}"),
                        None => "root (no admin_group is configured)".to_string(),
                    };
                    Response::Denied {
                        message: format!(
                            "permission denied: `{}` changes the cluster and needs {who}; you are {}",
                            req.command.spelled(),
                            by
                        ),
                    }
                } else {
                    coordinator
                        .send(Control {
                            command: req.command,
                            by,
                        })
                        .await
                        .unwrap_or_else(|e| Response::Error {
                            message: format!("coordinator unavailable: {e}"),
                        })
                }
            }
        },
    };
    let mut out = serde_json::to_vec(&response).map_err(std::io::Error::other)?;
    out.push(b'\n');
    write.write_all(&out).await?;
    write.shutdown().await?;
    Ok(())
}
