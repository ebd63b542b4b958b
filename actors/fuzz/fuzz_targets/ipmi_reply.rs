//! A BMC's answers to the IPMI session of the BMC heartbeat path and of
//! the forced stop by BMC (ipmi-rs: RMCP ping, channel authentication,
//! RMCP+ or IPMI v1.5 activation, Get Chassis Status, Set Session
//! Privilege, Chassis Control), sent by a BMC on loopback.
//!
//! The input is answers, each a tag byte, a length byte and the bytes:
//! even tags send the bytes as they are; odd ones an IPMI v1.5 message
//! without authentication whose headers and IPMB checksums the target
//! writes, so that the fuzzer reaches what the answers hold.
#![no_main]

use libfuzzer_sys::fuzz_target;
use understudy_actors::fuzzing::{ipmi_reply, BmcAnswer};

fuzz_target!(|data: &[u8]| {
    ipmi_reply(&BmcAnswer::from_input(data));
});
