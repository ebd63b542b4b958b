//! Placement: which server of a group's order comes first. Deterministic,
//! so every server that computes it gets the same answer; the cluster brain
//! ([`crate::cluster`]) applies it to what each server knows.

/// First server of the group's `order` for which `eligible` holds.
pub fn startup_server(order: &[String], eligible: impl Fn(&str) -> bool) -> Option<&str> {
    order.iter().map(|s| s.as_str()).find(|s| eligible(s))
}

/// Failover destination: the first eligible server in the group's order
/// other than the one it is leaving.
pub fn failover_destination<'a>(
    order: &'a [String],
    leaving: &str,
    eligible: impl Fn(&str) -> bool,
) -> Option<&'a str> {
    startup_server(order, |s| s != leaving && eligible(s))
}

/// `CLP_PRIORITY`: 1-based position of `server` in the group's order.
pub fn priority(order: &[String], server: &str) -> Option<usize> {
    order.iter().position(|s| s == server).map(|i| i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order() -> Vec<String> {
        vec!["a".into(), "b".into(), "c".into()]
    }

    #[test]
    fn first_eligible_in_order() {
        assert_eq!(startup_server(&order(), |_| true), Some("a"));
        assert_eq!(startup_server(&order(), |s| s != "a"), Some("b"));
        assert_eq!(startup_server(&order(), |_| false), None);
    }

    #[test]
    fn failover_skips_the_server_being_left() {
        assert_eq!(failover_destination(&order(), "a", |_| true), Some("b"));
        assert_eq!(failover_destination(&order(), "b", |_| true), Some("a"));
        assert_eq!(failover_destination(&order(), "a", |s| s == "c"), Some("c"));
        // Single server: nowhere to go.
        assert_eq!(
            failover_destination(&["a".to_string()], "a", |_| true),
            None
        );
    }

    #[test]
    fn priority_is_one_based() {
        assert_eq!(priority(&order(), "a"), Some(1));
        assert_eq!(priority(&order(), "c"), Some(3));
        assert_eq!(priority(&order(), "z"), None);
    }
}
