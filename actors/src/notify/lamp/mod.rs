//! Network warning lamps: one lamp per server shows that server's state.
//!
//! The lamp of a server is green while its cluster service runs, off after
//! a normal stop, and blinks red when the server has gone down; a surviving
//! server drives the lamp of the one that went down (so when every server
//! is down, the last one's lamp cannot be changed). A lamp keeps its state
//! until it is told otherwise; an operator switches one off with an `Off`
//! command (`clpdn1000s -h NAME` in the product).
//!
//! Which event drives what is [`for_event`]; [`LampNotifier`] carries the
//! commands out and reports each as alert `lamp 5` (done), `lamp 6` (the
//! lamp answered with an error) or `lamp 7` (the command could not be
//! carried out). The protocols (one file each): PATLITE PNS frames for the
//! NH series and the LA6, the HTTP `/api/control` interface, and `alert`
//! over rsh.
//!
//! The buzzer stays silent in every state: the product's guide describes
//! only the lights, and a lamp that sounds until someone walks over to it
//! is a choice an operator should make on the lamp itself.

pub(crate) mod http;
pub(crate) mod net;
mod notifier;
pub(crate) mod pns;
pub(crate) mod rsh;

/// The lamp settings live in the brain crate.
pub use understudy_brain::notify::lamp as config;

use std::fmt;
use std::future::Future;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use config::{Lamp, LampConfig, LampProtocol};
pub use http::{control_path as http_control_path, request as http_request};
pub use notifier::{send_test, Drain, LampNotifier, Reconfigure, SendTest, SetLamp, TestReport};
pub use pns::{frame as pns_frame, run_control as pns_run_control};
pub use rsh::{command as rsh_command, handshake as rsh_handshake};

use crate::model::catalog::Event;
use net::Failure;

/// What a lamp shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum LampState {
    /// The server runs: green on, everything else off.
    Green,
    /// Stopped normally, or switched off by an operator: all off, buzzer
    /// included.
    Off,
    /// The server went down: red flashing, everything else off.
    RedBlinking,
}

impl LampState {
    /// The tier and buzzer codes every protocol uses, in the order red,
    /// yellow (amber), green, blue, white, buzzer: 0 off / stop, 1 on,
    /// 2 flashing (pattern 1).
    pub fn pattern(self) -> [u8; 6] {
        match self {
            LampState::Green => [0, 0, 1, 0, 0, 0],
            LampState::Off => [0, 0, 0, 0, 0, 0],
            LampState::RedBlinking => [2, 0, 0, 0, 0, 0],
        }
    }

    /// The pattern as six digits (`001000`), as HTTP and rsh want it.
    pub fn digits(self) -> String {
        self.pattern()
            .iter()
            .map(|d| char::from(b'0' + d))
            .collect()
    }

    pub fn as_str(self) -> &'static str {
        match self {
            LampState::Green => "green",
            LampState::Off => "off",
            LampState::RedBlinking => "red blinking",
        }
    }
}

impl fmt::Display for LampState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How one command to a lamp ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum LampOutcome {
    /// The lamp confirmed the command.
    Done,
    /// The lamp answered with an error (NAK, `Error.`, rsh refusal, an
    /// answer that is no success).
    Refused(String),
    /// The command could not be carried out: no connection (after the
    /// retry), timeout, connection lost, no privileged port.
    Unreachable(String),
    /// Never sent: a newer command for the same lamp came first.
    Superseded,
}

impl LampOutcome {
    /// The alert for this outcome (none for `Superseded`).
    pub fn event(&self, lamp: &Lamp, state: LampState) -> Option<Event> {
        let server = lamp.server.clone();
        let label = lamp.label();
        match self {
            LampOutcome::Done => Some(Event::LampDone {
                server,
                lamp: label,
                state: state.to_string(),
            }),
            LampOutcome::Refused(error) => Some(Event::LampRefused {
                server,
                lamp: label,
                error: error.clone(),
            }),
            LampOutcome::Unreachable(error) => Some(Event::LampUnreachable {
                server,
                lamp: label,
                error: error.clone(),
            }),
            LampOutcome::Superseded => None,
        }
    }
}

/// Time limits of one command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LampTiming {
    /// Bound of every step: resolve, connect, send, each read.
    pub step: Duration,
    /// Pause before the one retry after a failed connect.
    pub retry_pause: Duration,
}

impl Default for LampTiming {
    fn default() -> Self {
        LampTiming {
            step: Duration::from_secs(5),
            retry_pause: Duration::from_secs(1),
        }
    }
}

/// Sends one command to `lamp`, with one retry when no connection came
/// about. Never panics, never waits longer than its steps allow.
pub async fn drive(lamp: &Lamp, state: LampState, timing: LampTiming) -> LampOutcome {
    tracing::debug!(
        "warning lamp {} ({}, server {}): {state}",
        lamp.label(),
        lamp.protocol,
        lamp.server
    );
    with_retry(timing.retry_pause, || attempt(lamp, state, timing.step)).await
}

async fn attempt(lamp: &Lamp, state: LampState, step: Duration) -> Result<(), Failure> {
    match lamp.protocol {
        LampProtocol::PnsNh | LampProtocol::PnsLa6 => pns::send(lamp, state, step).await,
        LampProtocol::Http => http::send(lamp, state, step).await,
        LampProtocol::Rsh => rsh::send(lamp, state, step).await,
    }
}

/// Runs `attempt`, and once more after `pause` when it could not connect.
async fn with_retry<F, Fut>(pause: Duration, mut attempt: F) -> LampOutcome
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), Failure>>,
{
    let result = match attempt().await {
        Err(Failure::Connect(_)) => {
            tokio::time::sleep(pause).await;
            match attempt().await {
                Err(Failure::Connect(e)) => Err(Failure::Connect(format!("{e} (2 attempts)"))),
                other => other,
            }
        }
        other => other,
    };
    match result {
        Ok(()) => LampOutcome::Done,
        Err(Failure::Refused(e)) => LampOutcome::Refused(e),
        Err(Failure::Connect(e) | Failure::Unreachable(e)) => LampOutcome::Unreachable(e),
    }
}

/// The lamp command an event calls for, seen from server `local`:
/// this server's service starting lights its lamp green, its normal stop
/// switches it off, and a peer declared down (not one that left in order)
/// gets its lamp blinking red. Every surviving server sends the latter;
/// the same command twice does no harm.
pub fn for_event(event: &Event, local: &str) -> Option<SetLamp> {
    match event {
        Event::ClusterStarting { server, .. } => Some(SetLamp {
            server: server.clone(),
            state: LampState::Green,
        }),
        Event::ClusterStopping { .. } => Some(SetLamp {
            server: local.to_string(),
            state: LampState::Off,
        }),
        Event::ServerDown { server, .. } if server != local => Some(SetLamp {
            server: server.clone(),
            state: LampState::RedBlinking,
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[test]
    fn patterns() {
        assert_eq!(LampState::Green.digits(), "001000");
        assert_eq!(LampState::Off.digits(), "000000");
        assert_eq!(LampState::RedBlinking.digits(), "200000");
        assert_eq!(LampState::RedBlinking.to_string(), "red blinking");
    }

    #[tokio::test]
    async fn one_retry_on_connect_failure_only() {
        let calls = Cell::new(0);
        let outcome = with_retry(Duration::ZERO, || {
            calls.set(calls.get() + 1);
            async { Err(Failure::Connect("connect to x: connection refused".into())) }
        })
        .await;
        assert_eq!(calls.get(), 2);
        assert_eq!(
            outcome,
            LampOutcome::Unreachable("connect to x: connection refused (2 attempts)".into())
        );

        calls.set(0);
        let outcome = with_retry(Duration::ZERO, || {
            calls.set(calls.get() + 1);
            let n = calls.get();
            async move {
                if n == 1 {
                    Err(Failure::Connect("refused".into()))
                } else {
                    Ok(())
                }
            }
        })
        .await;
        assert_eq!((calls.get(), outcome), (2, LampOutcome::Done));

        for failure in [
            Failure::Refused("NAK".into()),
            Failure::Unreachable("read: timed out".into()),
        ] {
            calls.set(0);
            let f = failure.clone();
            let outcome = with_retry(Duration::ZERO, || {
                calls.set(calls.get() + 1);
                let f = f.clone();
                async move { Err(f) }
            })
            .await;
            assert_eq!(calls.get(), 1, "{failure:?} is not retried");
            assert!(!matches!(outcome, LampOutcome::Done));
        }
    }

    #[test]
    fn outcomes_become_alerts() {
        let lamp = Lamp {
            server: "s2".into(),
            address: "192.0.2.9".into(),
            protocol: LampProtocol::PnsNh,
            port: None,
            user: None,
        };
        let e = LampOutcome::Done
            .event(&lamp, LampState::RedBlinking)
            .unwrap();
        assert_eq!(e.id(), ("lamp", 5, crate::model::catalog::Level::Info));
        assert_eq!(
            e.message(),
            "warning lamp 192.0.2.9:10000 of server s2 set to red blinking"
        );
        let e = LampOutcome::Refused("NAK".into())
            .event(&lamp, LampState::Green)
            .unwrap();
        assert_eq!(e.id().1, 6);
        let e = LampOutcome::Unreachable("x".into())
            .event(&lamp, LampState::Green)
            .unwrap();
        assert_eq!(e.id().1, 7);
        assert!(LampOutcome::Superseded
            .event(&lamp, LampState::Off)
            .is_none());
    }

    #[test]
    fn events_to_commands() {
        let starting = Event::ClusterStarting {
            server: "s1".into(),
            config_digest: "d".into(),
        };
        assert_eq!(
            for_event(&starting, "s1"),
            Some(SetLamp {
                server: "s1".into(),
                state: LampState::Green
            })
        );
        let stopping = Event::ClusterStopping {
            reason: "requested".into(),
        };
        assert_eq!(
            for_event(&stopping, "s1").map(|c| (c.server, c.state)),
            Some(("s1".into(), LampState::Off))
        );
        let down = Event::ServerDown {
            server: "s2".into(),
            cause: "every heartbeat path is silent".into(),
        };
        assert_eq!(
            for_event(&down, "s1").map(|c| (c.server, c.state)),
            Some(("s2".into(), LampState::RedBlinking))
        );
        assert_eq!(for_event(&down, "s2"), None);
        let left = Event::ServerLeft {
            server: "s2".into(),
        };
        assert_eq!(for_event(&left, "s1"), None);
    }
}
