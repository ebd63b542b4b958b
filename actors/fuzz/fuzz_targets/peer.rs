//! Bytes on a peer-link connection: frames read as the server and the
//! client read them, each checked as a request, a greeting and an answer.
//!
//! The first byte chooses what the rest is:
//! - even: the connection's bytes as they came;
//! - odd: payloads separated by 0xFF, each sealed with the targets' key,
//!   back to back (past the authentication code, into the JSON of the
//!   requests and answers).
#![no_main]

use libfuzzer_sys::fuzz_target;
use understudy_actors::fuzzing::{peer, sealed};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode % 2 == 0 {
        peer(rest);
    } else {
        let stream: Vec<u8> = rest.split(|&b| b == 0xff).flat_map(sealed).collect();
        peer(&stream);
    }
});
