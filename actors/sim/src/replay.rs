//! Replays a decision journal taken from a real server: the same brain,
//! the same configuration, the same inputs at the same instants; prints
//! every decision with what the brain knew, and says where the replay
//! decides otherwise than the server did (another version of the brain, or
//! another configuration).

use std::time::Duration;

use understudy_brain::cluster::Brain;
use understudy_brain::config::ClusterConfig;
use understudy_brain::journal::Line;

/// What a replay found.
#[derive(Debug, Default)]
pub struct Replayed {
    pub server: String,
    pub inputs: u64,
    /// Every decision of the replay: instant (ms), command, reason.
    pub decisions: Vec<(f64, String, String)>,
    /// Decisions the server recorded that the replay did not take, or the
    /// other way round (at most a few).
    pub differences: Vec<String>,
    /// The journal stopped taking inputs (full): the replay ends there.
    pub truncated: bool,
}

/// Replays `text` (a journal.jsonl) on `config`.
pub fn replay_journal(config: &ClusterConfig, text: &str) -> Result<Replayed, String> {
    let mut out = Replayed::default();
    // A journal being written may end in the middle of a line.
    let whole = match text.rfind('\n') {
        Some(i) => &text[..=i],
        None => "",
    };
    let mut lines = whole
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let (n, first) = lines.next().ok_or("the journal is empty")?;
    let start: Line = serde_json::from_str(first).map_err(|e| format!("line {}: {e}", n + 1))?;
    let Line::Start {
        server,
        incarnation,
        config_digest,
    } = start
    else {
        return Err("line 1: not the start of a journal".into());
    };
    if config.server(&server).is_none() {
        return Err(format!(
            "the journal is of server {server}, not in this configuration"
        ));
    }
    if config.digest() != config_digest {
        out.differences.push(format!(
            "the journal was taken with configuration {config_digest}, this one is {}",
            config.digest()
        ));
    }
    let mut brain = Brain::new(config.clone(), &server, incarnation, Duration::ZERO);
    out.server = server;
    // The server's decisions for the input being replayed.
    let mut recorded: Vec<String> = Vec::new();
    let mut produced: Vec<String> = Vec::new();
    let compare = |recorded: &mut Vec<String>, produced: &mut Vec<String>, out: &mut Replayed| {
        if recorded != produced && out.differences.len() < 10 {
            out.differences.push(format!(
                "the server decided {:?}, the replay {:?}",
                recorded, produced
            ));
        }
        recorded.clear();
        produced.clear();
    };
    for (n, text) in lines {
        let line: Line = serde_json::from_str(text).map_err(|e| format!("line {}: {e}", n + 1))?;
        match line {
            Line::Input { t_us, input } => {
                compare(&mut recorded, &mut produced, &mut out);
                let now = Duration::from_micros(t_us);
                out.inputs += 1;
                for c in brain.handle(now, input) {
                    let Some(reason) = brain.reason(&c) else {
                        continue;
                    };
                    let text = format!("{c:?}");
                    produced.push(text.clone());
                    out.decisions
                        .push((now.as_secs_f64() * 1000.0, text, reason));
                }
            }
            Line::Decision { command, .. } => recorded.push(command),
            Line::Full { .. } => {
                out.truncated = true;
                break;
            }
            Line::Start { .. } => return Err(format!("line {}: a second start", n + 1)),
        }
    }
    // The decisions of the last input may not be written yet: not compared.
    Ok(out)
}
