//! Authenticated traffic between the servers of a cluster.
//!
//! Every packet and every message on the peer link is a sealed frame
//! ([`frame`]): the payload followed by an HMAC-SHA256 under the cluster key
//! ([`key`]), a secret shared by the servers through a key file. Frames are
//! authenticated, not encrypted: heartbeats and peer requests carry states
//! and commands, not secrets, but nobody without the key may forge them.
//!
//! - [`key`]: the cluster key file (load, generate).
//! - [`frame`]: sealing and opening frames; [`Rejection`] says why a frame
//!   was dropped.
//! - [`replay`]: sequence numbers per sender and path, so a captured
//!   heartbeat cannot be played back.
//! - [`heartbeat`]: what a heartbeat carries, and `send_leaving` for the
//!   guardian.
//! - [`peer`]: one authenticated request and response per TCP connection,
//!   with a fresh nonce from the server so requests cannot be replayed.

pub mod frame;
pub mod heartbeat;
pub mod key;
pub mod peer;
pub mod replay;

pub use frame::{open, open_json, seal, seal_json, Refusal, Rejection};
pub use key::ClusterKey;

use std::io::Read;

/// Fills `buf` from the kernel's random source.
pub fn random_bytes(buf: &mut [u8]) -> std::io::Result<()> {
    std::fs::File::open("/dev/urandom")?.read_exact(buf)
}

/// Lowercase hex of `bytes`.
pub fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 0xf) as usize] as char);
    }
    s
}

/// The bytes spelled by `text` (hex digits, either case, even count).
pub fn from_hex(text: &str) -> Option<Vec<u8>> {
    let digits = text.as_bytes();
    if !digits.len().is_multiple_of(2) {
        return None;
    }
    let value = |d: u8| (d as char).to_digit(16).map(|v| v as u8);
    digits
        .chunks(2)
        .map(|pair| Some((value(pair[0])? << 4) | value(pair[1])?))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip() {
        let bytes = [0x00, 0x01, 0xab, 0xff, 0x7f];
        assert_eq!(to_hex(&bytes), "0001abff7f");
        assert_eq!(from_hex("0001ABff7f").unwrap(), bytes);
        assert_eq!(from_hex("abc"), None);
        assert_eq!(from_hex("zz"), None);
        assert_eq!(from_hex("+1"), None);
    }
}
