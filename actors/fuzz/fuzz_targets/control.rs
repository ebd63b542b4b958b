//! A request line on the control socket, as the server judges it.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    understudy_actors::fuzzing::control(data);
});
