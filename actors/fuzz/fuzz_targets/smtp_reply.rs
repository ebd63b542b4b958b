//! An SMTP server's replies to the mail notifier and to the smtp monitor.
//! First byte: bytes per read (0: all at once); second: bit 0 set, the
//! notifier logs in (AUTH); the rest: what the server sends, its replies
//! separated by 0xFF (see `Script`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use understudy_actors::fuzzing::{smtp_reply, Script};

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.get(1..).and_then(<[u8]>::split_first) else {
        return;
    };
    let script = Script::new(rest, data[0] as usize);
    smtp_reply(&script, flags & 1 == 1);
});
