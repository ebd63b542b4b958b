//! Text rendering of status and alerts for people.

use std::fmt::Write;

use understudy_actors::model::catalog::Alert;
use understudy_actors::model::state::ClusterStatus;

pub fn status(s: &ClusterStatus) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "cluster {}    server {}    config {}{}",
        s.cluster,
        s.server,
        s.config_digest,
        if s.stopping {
            "    (stopping)"
        } else if s.suspended {
            "    (suspended: no automatic recovery or failover)"
        } else {
            ""
        }
    );
    let _ = writeln!(out, "servers");
    for srv in &s.servers {
        let state = srv.state.as_str();
        let mut notes = Vec::new();
        if srv.local {
            notes.push("this server".to_string());
        }
        if srv.config_mismatch {
            notes.push("OTHER CONFIGURATION: gets no groups".to_string());
        }
        let _ = writeln!(
            out,
            "  {:<20} {:<16}{}",
            srv.name,
            state,
            if notes.is_empty() {
                String::new()
            } else {
                format!("({})", notes.join(", "))
            }
        );
        if !srv.local {
            for (i, p) in srv.paths.iter().enumerate() {
                let mut line = format!(
                    "    path {i} {:<39} {:<8} received {}",
                    p.address,
                    format!("{:?}", p.state),
                    p.received
                );
                if p.lost > 0 {
                    let _ = write!(line, ", lost {}", p.lost);
                }
                let _ = writeln!(out, "{line}");
            }
        }
    }
    let _ = writeln!(out, "groups");
    for g in &s.groups {
        let _ = writeln!(
            out,
            "  {:<20} {:<16} current: {}",
            g.name,
            g.state.as_str(),
            g.current.as_deref().unwrap_or("-")
        );
        for r in &g.resources {
            let mut line = format!("    {:<18} {:<5} {:<16}", r.name, r.kind, r.state.as_str());
            if let Some(pid) = r.pid {
                let _ = write!(line, " pid {pid}");
            }
            if let Some(e) = &r.last_error {
                let _ = write!(line, " error: {e}");
            }
            let _ = writeln!(out, "{}", line.trim_end());
        }
    }
    if !s.monitors.is_empty() {
        let _ = writeln!(out, "monitors");
    }
    for m in &s.monitors {
        let mut line = format!(
            "  {:<20} {:<9} {:<10} recovery: {} (reactivations {}, failovers {})",
            m.name,
            m.kind,
            if m.runs_here { m.state.as_str() } else { "-" },
            m.recovery_target,
            m.reactivations,
            m.failovers
        );
        if !m.runs_here {
            line.push_str(" not run on this server");
        }
        if let Some(e) = &m.last_error {
            let _ = write!(line, " error: {e}");
        }
        let _ = writeln!(out, "{line}");
    }
    let r = &s.rejected;
    if r.garbled + r.forged + r.replayed + r.unknown_version > 0 {
        let _ = writeln!(
            out,
            "cluster traffic dropped: {} forged, {} replayed, {} garbled, {} of an unknown protocol version",
            r.forged, r.replayed, r.garbled, r.unknown_version
        );
    }
    if s.malformed_requests > 0 {
        let _ = writeln!(
            out,
            "malformed control requests dropped: {}",
            s.malformed_requests
        );
    }
    out
}

pub fn alert(a: &Alert) -> String {
    format!(
        "{}  {:<10} {:<5} {} {:<4} {}",
        a.time,
        a.server,
        a.level.as_str(),
        a.module,
        a.event_id,
        a.message
    )
}
