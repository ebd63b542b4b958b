//! An HTTP server's reply to the http monitor, the HTTP target of
//! partition resolution and the lamp's HTTP client. First byte: bytes per
//! read (0: all at once); the rest: what the server sends (0xFF: a pause,
//! see `Script`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use understudy_actors::fuzzing::{http_status, Script};

fuzz_target!(|data: &[u8]| {
    http_status(&Script::from_input(data));
});
