//! A datagram at an SNMP trap receiver: decoded, then judged for the
//! endpoint's message monitors.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    understudy_actors::fuzzing::snmp_trap(data);
});
