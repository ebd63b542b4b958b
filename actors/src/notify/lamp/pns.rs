//! PATLITE PNS: binary frames over TCP (default port 10000).
//!
//! A frame is `category (2 ASCII) | identifier (1 ASCII) | 0x00 | data
//! length (u16, big-endian) | data`. We only send the run control command
//! `S` with six data bytes: five tiers and the buzzer. The NH series uses
//! category `XX` (tiers red, yellow, green, blue, white); the LA6 uses `AB`
//! (tiers 1-5, red, amber, green, blue, white when fitted the usual way).
//! The lamp answers one byte: ACK `0x06` or NAK `0x15`.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWriteExt};

use super::config::{Lamp, LampProtocol};
use super::net::{bounded, connect, excerpt, read_reply, Failure};
use super::LampState;

pub const ACK: u8 = 0x06;
pub const NAK: u8 = 0x15;
/// Product category of the NH series.
pub const CATEGORY_NH: [u8; 2] = *b"XX";
/// Product category of the LA6.
pub const CATEGORY_LA6: [u8; 2] = *b"AB";
/// Run control: set every tier and the buzzer.
pub const RUN_CONTROL: u8 = b'S';

/// One PNS frame. `data` longer than a u16 can count is cut (never the case
/// for the frames built here).
pub fn frame(category: [u8; 2], identifier: u8, data: &[u8]) -> Vec<u8> {
    let data = &data[..data.len().min(u16::MAX as usize)];
    let mut out = Vec::with_capacity(6 + data.len());
    out.extend_from_slice(&category);
    out.push(identifier);
    out.push(0x00);
    out.extend_from_slice(&(data.len() as u16).to_be_bytes());
    out.extend_from_slice(data);
    out
}

/// The run control frame that shows `state`. NH and LA6 share the tier
/// codes we use (00 off, 01 on, 02 flashing, buzzer 00 stop).
pub fn run_control(protocol: LampProtocol, state: LampState) -> Vec<u8> {
    let category = match protocol {
        LampProtocol::PnsLa6 => CATEGORY_LA6,
        _ => CATEGORY_NH,
    };
    frame(category, RUN_CONTROL, &state.pattern())
}

/// What the answer byte means.
pub(super) fn judge(reply: &[u8]) -> Result<(), Failure> {
    match reply.first() {
        Some(&ACK) => Ok(()),
        Some(&NAK) => Err(Failure::Refused("the lamp answered NAK".into())),
        Some(b) => Err(Failure::Refused(format!(
            "unexpected answer 0x{b:02x} ({})",
            excerpt(reply, 40)
        ))),
        None => Err(Failure::Unreachable(
            "the lamp closed the connection without an answer".into(),
        )),
    }
}

/// Connects, sends the frame for `state`, reads the answer.
pub(super) async fn send(lamp: &Lamp, state: LampState, step: Duration) -> Result<(), Failure> {
    let mut stream = connect(lamp, step).await?;
    let request = run_control(lamp.protocol, state);
    bounded(step, "send the command", stream.write_all(&request))
        .await
        .map_err(Failure::Unreachable)?;
    answer(&mut stream, step).await
}

/// Reads and judges the answer byte (generic, for the fuzz target
/// `lamp_reply`).
pub(crate) async fn answer<S: AsyncRead + Unpin>(
    stream: &mut S,
    step: Duration,
) -> Result<(), Failure> {
    let (reply, _) = read_reply(stream, step, 16, |r| !r.is_empty())
        .await
        .map_err(Failure::Unreachable)?;
    judge(&reply)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames() {
        assert_eq!(
            run_control(LampProtocol::PnsNh, LampState::Green),
            [0x58, 0x58, 0x53, 0x00, 0x00, 0x06, 0, 0, 1, 0, 0, 0]
        );
        assert_eq!(
            run_control(LampProtocol::PnsNh, LampState::RedBlinking),
            [0x58, 0x58, 0x53, 0x00, 0x00, 0x06, 2, 0, 0, 0, 0, 0]
        );
        assert_eq!(
            run_control(LampProtocol::PnsNh, LampState::Off),
            [0x58, 0x58, 0x53, 0x00, 0x00, 0x06, 0, 0, 0, 0, 0, 0]
        );
        assert_eq!(
            run_control(LampProtocol::PnsLa6, LampState::Green),
            [0x41, 0x42, 0x53, 0x00, 0x00, 0x06, 0, 0, 1, 0, 0, 0]
        );
        // The status request of the NH series, as in its manual.
        assert_eq!(frame(CATEGORY_NH, b'G', &[]), [0x58, 0x58, 0x47, 0, 0, 0]);
    }

    #[test]
    fn answers() {
        assert_eq!(judge(&[ACK]), Ok(()));
        assert_eq!(
            judge(&[NAK]),
            Err(Failure::Refused("the lamp answered NAK".into()))
        );
        assert!(matches!(judge(b"?"), Err(Failure::Refused(e)) if e.contains("0x3f")));
        assert!(matches!(judge(&[]), Err(Failure::Unreachable(_))));
    }
}
