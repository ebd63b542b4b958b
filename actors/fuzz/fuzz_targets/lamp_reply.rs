//! A lamp's answer, read and judged by each lamp protocol (PNS, HTTP,
//! rsh). First byte: bytes per read (0: all at once); the rest: what the
//! lamp sends (0xFF: a pause, see `Script`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use understudy_actors::fuzzing::{lamp_reply, Script};

fuzz_target!(|data: &[u8]| {
    lamp_reply(&Script::from_input(data));
});
