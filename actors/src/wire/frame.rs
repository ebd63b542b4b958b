//! Sealed frames: `USH1`, the payload length (u32, big endian), the payload,
//! then HMAC-SHA256 under the cluster key of everything before it. The
//! fourth byte of the magic is the protocol version (`1`). Fields are added
//! to the payloads only with defaults, which keeps version 1; a change older
//! servers could not read takes a new version, and a frame of a version this
//! server does not speak is counted and reported (`unknown version`), never
//! read.
//!
//! The same layout serves UDP heartbeats (one frame per datagram) and the
//! peer link (frames back to back on a TCP stream: read the header, then
//! exactly length + 32 more bytes).

use std::fmt;

use hmac::Mac;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::key::ClusterKey;

pub const MAGIC: &[u8; 4] = b"USH1";
/// The protocol version this server speaks: the magic's fourth byte.
pub const PROTOCOL_VERSION: u8 = MAGIC[3];
/// Magic and length.
pub const HEADER_LEN: usize = 8;
/// HMAC-SHA256 output.
pub const MAC_LEN: usize = 32;
/// Largest payload a frame may carry.
pub const MAX_PAYLOAD: usize = 16 * 1024 * 1024;

/// Why a packet or request was dropped (counted in `RejectedTraffic`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Rejection {
    /// Not a frame of ours: wrong magic, truncated, oversized, undecodable.
    Garbled,
    /// The authentication code does not match: another key, or altered.
    Forged,
    /// Authentic, but already seen (or not meant for this exchange).
    Replayed,
    /// Of a protocol version this server does not speak (a newer server
    /// during a rolling upgrade).
    Version,
}

impl Rejection {
    pub fn as_str(self) -> &'static str {
        match self {
            Rejection::Garbled => "garbled",
            Rejection::Forged => "forged",
            Rejection::Replayed => "replayed",
            Rejection::Version => "unknown version",
        }
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A dropped frame: the category and what exactly was wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub reason: Rejection,
    pub detail: String,
}

impl Refusal {
    pub fn new(reason: Rejection, detail: impl Into<String>) -> Refusal {
        Refusal {
            reason,
            detail: detail.into(),
        }
    }

    fn garbled(detail: impl Into<String>) -> Refusal {
        Refusal::new(Rejection::Garbled, detail)
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.reason, self.detail)
    }
}

/// Seals `payload`. The caller keeps it within [`MAX_PAYLOAD`] (a larger
/// one yields a frame that every receiver drops as garbled);
/// [`seal_json`] checks this.
pub fn seal(key: &ClusterKey, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len() + MAC_LEN);
    out.extend_from_slice(MAGIC);
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(payload);
    let mut mac = key.mac();
    mac.update(&out);
    out.extend_from_slice(&mac.finalize().into_bytes());
    out
}

/// The whole frame's length from its first [`HEADER_LEN`] bytes, so a
/// stream reader knows how much more to read. Checks magic and size limit.
pub fn frame_len(header: &[u8; HEADER_LEN]) -> Result<usize, Refusal> {
    if header[..3] != MAGIC[..3] {
        return Err(Refusal::garbled("not an understudy frame (wrong magic)"));
    }
    if header[3] != PROTOCOL_VERSION {
        return Err(Refusal::new(
            Rejection::Version,
            format!(
                "protocol version {:?} (this server speaks {:?})",
                header[3] as char, PROTOCOL_VERSION as char
            ),
        ));
    }
    let len = u32::from_be_bytes([header[4], header[5], header[6], header[7]]) as usize;
    if len > MAX_PAYLOAD {
        return Err(Refusal::garbled(format!(
            "payload of {len} bytes is over the limit of {MAX_PAYLOAD}"
        )));
    }
    Ok(HEADER_LEN + len + MAC_LEN)
}

/// Checks a whole frame and returns its payload.
pub fn open<'a>(key: &ClusterKey, bytes: &'a [u8]) -> Result<&'a [u8], Refusal> {
    if bytes.len() < HEADER_LEN + MAC_LEN {
        return Err(Refusal::garbled(format!(
            "{} bytes, too short for a frame",
            bytes.len()
        )));
    }
    let mut header = [0u8; HEADER_LEN];
    header.copy_from_slice(&bytes[..HEADER_LEN]);
    let total = frame_len(&header)?;
    if total != bytes.len() {
        return Err(Refusal::garbled(format!(
            "frame of {} bytes announces {} bytes of payload",
            bytes.len(),
            total - HEADER_LEN - MAC_LEN
        )));
    }
    let (signed, tag) = bytes.split_at(bytes.len() - MAC_LEN);
    let mut mac = key.mac();
    mac.update(signed);
    // verify_slice compares in constant time.
    mac.verify_slice(tag).map_err(|_| {
        Refusal::new(
            Rejection::Forged,
            "authentication code does not match (another cluster key, or altered)",
        )
    })?;
    Ok(&signed[HEADER_LEN..])
}

/// Seals `value` as JSON.
pub fn seal_json<T: Serialize + ?Sized>(key: &ClusterKey, value: &T) -> Result<Vec<u8>, String> {
    let payload = serde_json::to_vec(value).map_err(|e| format!("cannot encode: {e}"))?;
    if payload.len() > MAX_PAYLOAD {
        return Err(format!(
            "message of {} bytes is over the frame limit of {MAX_PAYLOAD}",
            payload.len()
        ));
    }
    Ok(seal(key, &payload))
}

/// Opens a frame holding JSON. Authentic JSON that does not decode as `T`
/// is garbled (a peer running an incompatible version, say).
pub fn open_json<T: DeserializeOwned>(key: &ClusterKey, bytes: &[u8]) -> Result<T, Refusal> {
    let payload = open(key, bytes)?;
    serde_json::from_slice(payload)
        .map_err(|e| Refusal::garbled(format!("authentic, but undecodable: {e}")))
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_frame_of_another_version_is_refused_as_such() {
        let k = super::ClusterKey::from_bytes([3; 32]);
        let mut f = super::seal(&k, b"{}");
        f[3] = b'2';
        let r = super::open(&k, &f).unwrap_err();
        assert_eq!(r.reason, super::Rejection::Version, "{r}");
        f[3] = b'x';
        f[0] = b'X';
        assert_eq!(
            super::open(&k, &f).unwrap_err().reason,
            super::Rejection::Garbled
        );
    }

    use super::*;

    fn key(b: u8) -> ClusterKey {
        ClusterKey::from_bytes([b; 32])
    }

    #[test]
    fn round_trip() {
        let k = key(1);
        let sealed = seal(&k, b"hello");
        assert_eq!(&sealed[..4], b"USH1");
        assert_eq!(&sealed[4..8], &5u32.to_be_bytes());
        assert_eq!(sealed.len(), 8 + 5 + 32);
        assert_eq!(open(&k, &sealed).unwrap(), b"hello");
        // An empty payload is a valid frame too.
        assert_eq!(open(&k, &seal(&k, b"")).unwrap(), b"");
    }

    #[test]
    fn every_flipped_bit_is_forged_or_garbled() {
        let k = key(2);
        let sealed = seal(&k, b"some payload");
        for i in 0..sealed.len() * 8 {
            let mut bad = sealed.clone();
            bad[i / 8] ^= 1 << (i % 8);
            let r = open(&k, &bad).unwrap_err();
            // Bits of the header break the framing (the fourth byte is the
            // protocol version); the rest the MAC.
            let expect = if i / 8 == 3 {
                Rejection::Version
            } else if i / 8 < HEADER_LEN {
                Rejection::Garbled
            } else {
                Rejection::Forged
            };
            assert_eq!(r.reason, expect, "bit {i}: {r}");
        }
    }

    #[test]
    fn truncated_and_foreign_frames_are_garbled() {
        let k = key(3);
        let sealed = seal(&k, b"payload");
        for cut in [0, 3, 8, 39, sealed.len() - 1] {
            let r = open(&k, &sealed[..cut]).unwrap_err();
            assert_eq!(r.reason, Rejection::Garbled, "cut at {cut}: {r}");
        }
        let mut longer = sealed.clone();
        longer.push(0);
        assert_eq!(open(&k, &longer).unwrap_err().reason, Rejection::Garbled);

        let mut magic = sealed.clone();
        magic[..4].copy_from_slice(b"XSH1");
        let r = open(&k, &magic).unwrap_err();
        assert_eq!(r.reason, Rejection::Garbled);
        assert!(r.detail.contains("magic"), "{r}");
        // Ours, of another protocol version: counted as such.
        magic[..4].copy_from_slice(b"USH2");
        assert_eq!(open(&k, &magic).unwrap_err().reason, Rejection::Version);

        // A header announcing more than the limit is refused before reading.
        let mut header = [0u8; HEADER_LEN];
        header[..4].copy_from_slice(MAGIC);
        header[4..].copy_from_slice(&(MAX_PAYLOAD as u32 + 1).to_be_bytes());
        assert_eq!(frame_len(&header).unwrap_err().reason, Rejection::Garbled);
        header[4..].copy_from_slice(&(MAX_PAYLOAD as u32).to_be_bytes());
        assert_eq!(frame_len(&header).unwrap(), 8 + MAX_PAYLOAD + 32);
    }

    #[test]
    fn wrong_key_is_forged() {
        let sealed = seal(&key(4), b"payload");
        let r = open(&key(5), &sealed).unwrap_err();
        assert_eq!(r.reason, Rejection::Forged);
    }

    #[test]
    fn json_helpers() {
        let k = key(6);
        let sealed = seal_json(&k, &vec![1u32, 2, 3]).unwrap();
        assert_eq!(open_json::<Vec<u32>>(&k, &sealed).unwrap(), vec![1, 2, 3]);
        // Authentic but not the expected shape.
        let r = open_json::<String>(&k, &sealed).unwrap_err();
        assert_eq!(r.reason, Rejection::Garbled);
        let r = open_json::<String>(&k, &seal(&k, b"{not json")).unwrap_err();
        assert_eq!(r.reason, Rejection::Garbled);
        // Another key is forged, whatever the content.
        let r = open_json::<Vec<u32>>(&key(7), &sealed).unwrap_err();
        assert_eq!(r.reason, Rejection::Forged);
    }
}
