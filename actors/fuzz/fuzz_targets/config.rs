//! Configuration text through `config check`'s parsing and validation.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The file is read as UTF-8 (`read_to_string`): other bytes never get
    // further.
    if let Ok(text) = std::str::from_utf8(data) {
        understudy_actors::fuzzing::config(text);
    }
});
