//! Calls into third-party code that parses bytes from the network (ipmi-rs
//! reading a BMC's answers), made so that a panic in it is that call's
//! error, not the daemon's end.
//!
//! The daemon's panic hook ends the daemon on any panic (a panic anywhere
//! is a death: actix would otherwise drop one actor and leave a stale state
//! behind). A panic inside [`call`] is different: the caller gets an error
//! and handles it (the BMC poller reports "unreachable" and opens a new
//! session), so the hook lets it unwind to [`call`] ([`active`]). Fuzzing
//! (FUZZING.md) is what keeps such panics from happening at all; this
//! keeps one that was missed from turning a datagram into a failover.

use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};

thread_local! {
    static ACTIVE: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f`; a panic in it is `Err` (its message, for the log).
pub fn call<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    let outer = ACTIVE.with(|a| a.replace(true));
    let result = catch_unwind(AssertUnwindSafe(f));
    ACTIVE.with(|a| a.set(outer));
    result.map_err(|payload| {
        payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic".into())
    })
}

/// Whether this thread is inside [`call`]: the daemon's panic hook lets
/// such a panic unwind instead of ending the daemon.
pub fn active() -> bool {
    ACTIVE.with(Cell::get)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_inside_is_the_calls_error() {
        assert_eq!(call(|| 7), Ok(7));
        assert!(!active());
        let e = call(|| {
            assert!(active());
            panic!("index out of bounds")
        });
        assert_eq!(e, Err::<(), _>("index out of bounds".into()));
        assert!(!active());
    }
}
