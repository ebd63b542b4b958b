//! Heartbeat datagrams through one path's receiver: framing, the
//! authentication code, the beat's JSON, sender and path checks, the
//! replay window.
//!
//! The first byte chooses how the rest becomes datagrams, so that most
//! inputs get past the authentication code (sealed with the targets' key):
//! - 0: the rest is one datagram as it came off the wire, received twice
//!   (the second time, an authentic one is a replay);
//! - 1: the rest is payloads separated by 0xFF (never a byte of UTF-8
//!   JSON), each sealed with the key;
//! - 2: the rest is read by `arbitrary` as beats (sender, incarnation,
//!   sequence number, path, kind), encoded as the sender encodes them and
//!   sealed, so that the replay window sees close, repeated numbers.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use understudy_actors::fuzzing::{heartbeat, sealed, SERVERS};
use understudy_actors::wire::heartbeat::{Advert, Beat, BeatKind, LEAVING_SEQ};

#[derive(Arbitrary, Debug)]
struct Draw {
    /// Index into the senders (one more than the servers: a stranger).
    from: u8,
    incarnation: u8,
    seq: u8,
    path: u8,
    kind: Kind,
    sent_ms: u16,
}

#[derive(Arbitrary, Debug)]
enum Kind {
    Alive {
        stopping: bool,
        isolated: bool,
        suspended: bool,
    },
    Leaving {
        died: bool,
    },
    /// A `Leaving` at its own sequence number, as a replay would carry it.
    LeavingAt {
        died: bool,
    },
}

fn beat(d: Draw) -> Beat {
    let senders = [SERVERS[0], SERVERS[1], SERVERS[2], "mallory"];
    let (seq, kind) = match d.kind {
        Kind::Alive {
            stopping,
            isolated,
            suspended,
        } => (
            d.seq as u64,
            BeatKind::Alive(Advert {
                stopping,
                isolated,
                suspended,
                ..Advert::default()
            }),
        ),
        Kind::Leaving { died } => (LEAVING_SEQ, BeatKind::Leaving { died }),
        Kind::LeavingAt { died } => (d.seq as u64, BeatKind::Leaving { died }),
    };
    Beat {
        from: senders[d.from as usize % senders.len()].to_string(),
        incarnation: 1_700_000_000_000_000 + d.incarnation as u64,
        seq,
        path: d.path % 3,
        config_digest: "fuzz".into(),
        sent_ms: d.sent_ms as u64,
        kind,
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let datagrams: Vec<Vec<u8>> = match mode % 3 {
        0 => vec![rest.to_vec(), rest.to_vec()],
        1 => rest.split(|&b| b == 0xff).map(sealed).collect(),
        _ => {
            let mut u = Unstructured::new(rest);
            let mut out = Vec::new();
            while !u.is_empty() && out.len() < 64 {
                let Ok(d) = Draw::arbitrary(&mut u) else {
                    break;
                };
                if let Ok(json) = serde_json::to_vec(&beat(d)) {
                    out.push(sealed(&json));
                }
            }
            out
        }
    };
    heartbeat(&datagrams);
});
