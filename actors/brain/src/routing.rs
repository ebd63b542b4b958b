//! Alert routing: where each alert goes besides the alert log (which gets
//! every alert). Each alert kind (module + event id) has default
//! destinations here, in one place; the configuration may override them per
//! kind (`alerts.routes`).
//!
//! The SNMP trap notifier takes, by default, the alerts mail takes by
//! default (the important ones), without the optional mails.

use serde::{Deserialize, Serialize};

use super::problems::Problems;

/// Notifier destinations of one alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Destinations {
    pub syslog: bool,
    pub mail: bool,
    /// The SNMP trap notifier.
    pub snmp: bool,
}

/// Alerts mailed by default: those the product mails (pm 11, 13, 20, 22;
/// nm 2, 10, 20; rc 32, 42, 92; rm 7, 9, 57; mm 905) plus the reports of the
/// Alert Service guide that have ids of their own here (failover started /
/// completed, server down, the guardian's "daemon died"), and the exit of
/// the Internet Server Agent's monitoring commands on an error (httpmon 6,
/// smtpmon 6).
const MAILED: &[(&str, u32)] = &[
    ("pm", 11),
    ("pm", 13),
    ("pm", 20),
    ("pm", 22),
    ("pm", 1200),
    ("nm", 2),
    ("nm", 10),
    ("nm", 20),
    ("nm", 1310),
    ("nm", 30),
    ("rc", 433),
    ("nm", 32),
    ("rc", 32),
    ("rc", 42),
    ("rc", 60),
    ("rc", 61),
    ("rc", 62),
    ("rc", 92),
    ("rm", 7),
    ("rm", 9),
    ("rm", 57),
    ("mm", 905),
    ("httpmon", 6),
    ("smtpmon", 6),
];

/// The built-in destinations of an alert kind.
pub fn default_destinations(module: &str, event_id: u32) -> Destinations {
    // The notifiers' own reports never go out by mail: a failing mail
    // server must not cause mails about itself.
    let own = matches!(module, "alert" | "lamp");
    let important = !own && MAILED.contains(&(module, event_id));
    Destinations {
        syslog: true,
        mail: important,
        snmp: important,
    }
}

/// A per-kind override in the configuration:
/// `Route(module: "rm", event_id: 4, mail: true)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename = "Route")]
pub struct AlertRoute {
    pub module: String,
    pub event_id: u32,
    /// Absent: the default.
    #[serde(default)]
    pub syslog: Option<bool>,
    #[serde(default)]
    pub mail: Option<bool>,
    /// The SNMP trap notifier. (Left out of the canonical form when absent.)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snmp: Option<bool>,
}

/// Why an alert may be mailed beyond its kind's destinations: the optional
/// mails of the mail settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OptionalMails {
    /// Alert service suspended / resumed (alert 3 / 4).
    pub suspend_resume: bool,
    /// Group started successfully (rc 11).
    pub group_started: bool,
}

/// Where an alert goes: defaults, then the optional mails, then the
/// configured overrides. `mail_allowed` is false when another server
/// reports the same event (one mail per event, not one per server).
pub fn route(
    module: &str,
    event_id: u32,
    routes: &[AlertRoute],
    optional: OptionalMails,
    mail_allowed: bool,
) -> Destinations {
    let mut d = default_destinations(module, event_id);
    if optional.suspend_resume && module == "alert" && matches!(event_id, 3 | 4) {
        d.mail = true;
    }
    if optional.group_started && module == "rc" && event_id == 11 {
        d.mail = true;
    }
    if let Some(r) = routes
        .iter()
        .find(|r| r.module == module && r.event_id == event_id)
    {
        if let Some(s) = r.syslog {
            d.syslog = s;
        }
        if let Some(m) = r.mail {
            d.mail = m;
        }
        if let Some(t) = r.snmp {
            d.snmp = t;
        }
    }
    // One report per event: a trap goes where its mail goes.
    d.mail &= mail_allowed;
    d.snmp &= mail_allowed;
    d
}

/// Modules alerts can come from (for validating overrides).
pub const MODULES: &[&str] = &[
    "pm", "nm", "rc", "rm", "trnsv", "mm", "alert", "lamp", "httpmon", "smtpmon",
];

pub fn validate_routes(path: &str, routes: &[AlertRoute], problems: &mut Problems) {
    let mut seen = std::collections::HashSet::new();
    for (i, r) in routes.iter().enumerate() {
        let p = format!("{path}[{i}]");
        if !MODULES.contains(&r.module.as_str()) {
            problems.push(
                format!("{p}.module"),
                format!(
                    "unknown module \"{}\" (modules: {})",
                    r.module,
                    MODULES.join(", ")
                ),
            );
        }
        if !seen.insert((r.module.clone(), r.event_id)) {
            problems.push(
                format!("{p}.event_id"),
                format!("{} {} is routed twice", r.module, r.event_id),
            );
        }
        if matches!(r.module.as_str(), "alert" | "lamp") && r.mail == Some(true) {
            problems.push(
                format!("{p}.mail"),
                "the notifiers' own events are never mailed (a broken mail server would report itself forever)",
            );
        }
        if matches!(r.module.as_str(), "alert" | "lamp") && r.snmp == Some(true) {
            problems.push(
                format!("{p}.snmp"),
                "the notifiers' own events are never sent as traps (a broken notifier would report itself forever)",
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(module: &str, id: u32, syslog: Option<bool>, mail: Option<bool>) -> AlertRoute {
        AlertRoute {
            module: module.into(),
            event_id: id,
            syslog,
            mail,
            snmp: None,
        }
    }

    #[test]
    fn traps_go_where_mails_go_by_default_and_follow_their_own_overrides() {
        assert!(default_destinations("rm", 9).snmp);
        assert!(!default_destinations("rc", 10).snmp);
        assert!(!default_destinations("alert", 6).snmp);
        let mut on = r("rc", 10, None, None);
        on.snmp = Some(true);
        let mut off = r("rm", 9, None, None);
        off.snmp = Some(false);
        let routes = [on, off];
        let none = OptionalMails::default();
        assert!(route("rc", 10, &routes, none, true).snmp);
        assert!(!route("rc", 10, &routes, none, true).mail);
        assert!(!route("rm", 9, &routes, none, true).snmp);
        assert!(route("rm", 9, &routes, none, true).mail);
        assert!(!route("rc", 10, &routes, none, false).snmp);
        // A route without `snmp` keeps its canonical form (and so the
        // configuration its digest).
        let text = ron::to_string(&r("rm", 4, None, Some(true))).unwrap();
        assert!(!text.contains("snmp"), "{text}");
        let mut p = Problems::default();
        let mut own = r("lamp", 1, None, None);
        own.snmp = Some(true);
        validate_routes("alerts.routes", &[own], &mut p);
        assert_eq!(p.into_vec().len(), 1);
    }

    #[test]
    fn product_mailed_kinds_are_mailed_by_default() {
        assert!(default_destinations("rm", 9).mail);
        assert!(default_destinations("rc", 32).mail);
        assert!(default_destinations("nm", 2).mail);
        assert!(default_destinations("rc", 60).mail);
        assert!(!default_destinations("rc", 10).mail);
        assert!(default_destinations("rc", 10).syslog);
        assert!(!default_destinations("alert", 6).mail);
        assert!(default_destinations("alert", 6).syslog);
    }

    #[test]
    fn overrides_and_optional_mails() {
        let none = OptionalMails::default();
        let routes = [
            r("rc", 10, Some(false), Some(true)),
            r("rm", 9, None, Some(false)),
        ];
        assert_eq!(
            route("rc", 10, &routes, none, true),
            Destinations {
                syslog: false,
                mail: true,
                snmp: false
            }
        );
        assert!(!route("rm", 9, &routes, none, true).mail);
        assert!(route("rm", 9, &routes, none, true).syslog);
        let opt = OptionalMails {
            suspend_resume: true,
            group_started: true,
        };
        assert!(route("rc", 11, &[], opt, true).mail);
        assert!(route("alert", 4, &[], opt, true).mail);
        assert!(!route("rc", 11, &[], none, true).mail);
    }

    #[test]
    fn another_server_reporting_means_no_mail_here() {
        assert!(!route("nm", 1310, &[], OptionalMails::default(), false).mail);
        assert!(route("nm", 1310, &[], OptionalMails::default(), false).syslog);
    }

    #[test]
    fn bad_overrides_are_named() {
        let mut p = Problems::default();
        validate_routes(
            "alerts.routes",
            &[
                r("xx", 1, None, None),
                r("rm", 9, None, None),
                r("rm", 9, None, None),
                r("alert", 6, None, Some(true)),
            ],
            &mut p,
        );
        let text: Vec<String> = p.into_vec().iter().map(|p| p.to_string()).collect();
        assert_eq!(text.len(), 3, "{text:?}");
        assert!(text[0].starts_with("alerts.routes[0].module"));
        assert!(text[1].starts_with("alerts.routes[2].event_id"));
        assert!(text[2].starts_with("alerts.routes[3].mail"));
    }
}
