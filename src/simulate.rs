//! `understudy simulate`: runs the cluster brain of a configuration (the
//! built-in lab cluster by default) through seeded fault schedules in the
//! deterministic simulator, and prints what it found. Exit status 0: no run
//! failed; 1: some did (each printed with its shrunk schedule and the
//! command that replays it); 2: bad arguments or configuration.

use std::path::Path;
use std::process::ExitCode;

use understudy_sim::schedule::FaultKind;
use understudy_sim::world::Outcome;
use understudy_sim::{run_many, run_seed, shrink, Options, Partition};

pub struct Args<'a> {
    pub seed: Option<u64>,
    pub runs: u64,
    pub servers: Option<usize>,
    pub faults: Option<&'a str>,
    pub config: Option<&'a Path>,
    pub threads: usize,
    pub partition: &'a str,
    pub forced_stop: &'a str,
    pub watchdog: &'a str,
}

pub fn run(args: Args) -> ExitCode {
    let mut opts = Options {
        threads: args.threads.max(1),
        ..Options::default()
    };
    opts.partition = match args.partition {
        "none" => Partition::None,
        "majority" => Partition::Majority,
        "witness" => Partition::Witness,
        "ping" => Partition::Ping,
        "majority-ping" => Partition::MajorityPing,
        "mixed" => Partition::Mixed,
        other => {
            eprintln!(
                "understudy simulate: unknown --partition \"{other}\" (none, majority, witness, ping, majority-ping, mixed)"
            );
            return ExitCode::from(crate::client::exit::BAD_CONFIG);
        }
    };
    opts.watchdog = match args.watchdog {
        "on" => Some(true),
        "off" => Some(false),
        "mixed" => None,
        other => {
            eprintln!("understudy simulate: unknown --watchdog \"{other}\" (on, off, mixed)");
            return ExitCode::from(crate::client::exit::BAD_CONFIG);
        }
    };
    opts.forced_stop = match args.forced_stop {
        "on" => Some(true),
        "off" => Some(false),
        "mixed" => None,
        other => {
            eprintln!("understudy simulate: unknown --forced-stop \"{other}\" (on, off, mixed)");
            return ExitCode::from(crate::client::exit::BAD_CONFIG);
        }
    };
    if let Some(list) = args.faults {
        let mut kinds = Vec::new();
        for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            match FaultKind::parse(name) {
                Some(k) => kinds.push(k),
                None => {
                    eprintln!(
                        "understudy simulate: unknown fault \"{name}\" (faults: {})",
                        FaultKind::ALL.map(|k| k.name()).join(", ")
                    );
                    return ExitCode::from(crate::client::exit::BAD_CONFIG);
                }
            }
        }
        opts.kinds = kinds;
    }
    if let Some(n) = args.servers {
        if !(2..=16).contains(&n) {
            eprintln!("understudy simulate: --servers must be between 2 and 16");
            return ExitCode::from(crate::client::exit::BAD_CONFIG);
        }
        opts.servers = Some(n);
    }
    if let Some(path) = args.config {
        match crate::config_check::load(path) {
            Ok(c) if c.servers.len() >= 2 => opts.config = Some(c),
            Ok(_) => {
                eprintln!(
                    "understudy simulate: {} has one server; there is nothing to fail over",
                    path.display()
                );
                return ExitCode::from(crate::client::exit::BAD_CONFIG);
            }
            Err(problems) => {
                crate::config_check::print_problems(path, &problems);
                return ExitCode::from(crate::client::exit::BAD_CONFIG);
            }
        }
    }
    if let Some(seed) = args.seed {
        opts.first_seed = seed;
        if args.runs == 1 {
            return one(&opts, seed);
        }
    }
    opts.runs = args.runs;
    let s = run_many(&opts);
    println!(
        "{} schedules (seeds {}..={}), {} events, {:.0} s of cluster time in {:.1} s",
        s.runs,
        opts.first_seed,
        opts.first_seed + opts.runs.saturating_sub(1),
        s.events,
        s.virtual_time.as_secs_f64(),
        s.wall.as_secs_f64()
    );
    println!("fault       runs  with two copies at some instant");
    for (k, (runs, doubles)) in &s.by_kind {
        println!("{:<10} {:>5}  {:>5}", k.name(), runs, doubles);
    }
    for (class, n) in &s.known {
        println!("known limit: {n} runs with two copies: {}", class.name());
    }
    if s.reports_twice > 0 {
        println!(
            "{} runs mailed a server-down twice (a reporter that died right after reporting)",
            s.reports_twice
        );
    }
    if s.failed.is_empty() {
        println!("no run failed");
        return ExitCode::SUCCESS;
    }
    println!("{} runs failed:", s.failed.len());
    for run in s.failed.iter().take(5) {
        let config = run.config(&opts);
        let small = shrink(&config, &run.schedule, run.world_seed, Outcome::failed);
        println!(
            "seed {} ({} servers), shortest failing schedule:\n{small}",
            run.seed, run.servers
        );
        describe(&understudy_sim::replay(&config, &small, run.world_seed));
        println!(
            "  replay: understudy simulate --seed {} --runs 1{}",
            run.seed,
            flags(&opts)
        );
    }
    ExitCode::from(1)
}

fn flags(opts: &Options) -> String {
    let mut f = opts
        .servers
        .map(|n| format!(" --servers {n}"))
        .unwrap_or_default();
    match opts.partition {
        Partition::None => f.push_str(" --partition none"),
        Partition::Majority => f.push_str(" --partition majority"),
        Partition::Witness => f.push_str(" --partition witness"),
        Partition::Ping => f.push_str(" --partition ping"),
        Partition::MajorityPing => f.push_str(" --partition majority-ping"),
        Partition::Mixed => {}
    }
    match opts.forced_stop {
        Some(true) => f.push_str(" --forced-stop on"),
        Some(false) => f.push_str(" --forced-stop off"),
        None => {}
    }
    match opts.watchdog {
        Some(true) => f.push_str(" --watchdog on"),
        Some(false) => f.push_str(" --watchdog off"),
        None => {}
    }
    f
}

fn one(opts: &Options, seed: u64) -> ExitCode {
    let run = run_seed(opts, seed);
    println!(
        "seed {seed}: {} servers, schedule:\n{}",
        run.servers, run.schedule
    );
    let config = run.config(opts);
    let traced = understudy_sim::replay_traced(&config, &run.schedule, run.world_seed);
    for line in &traced.trace {
        println!("  {line}");
    }
    describe(&run.outcome);
    if run.outcome.failed() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn describe(o: &Outcome) {
    for v in &o.violations {
        println!(
            "  {} ms: group {}: {} on {} and {} ({})",
            v.at.as_millis(),
            v.group,
            v.what,
            v.hosts.0,
            v.hosts.1,
            v.class.name()
        );
    }
    for g in &o.not_converged {
        println!("  group {g} is not on exactly one server after the faults healed");
    }
    for r in &o.reports_lost {
        println!("  server-down never reported: {r}");
    }
    for r in &o.reports_twice {
        println!("  server-down reported twice: {r}");
    }
    println!(
        "  {} events, {} ms of cluster time: {}",
        o.events,
        o.virtual_time.as_millis(),
        if o.failed() {
            "FAILED"
        } else if o.double() {
            "known limit only"
        } else {
            "ok"
        }
    );
}

/// `understudy simulate --replay JOURNAL --config FILE`.
pub fn replay(journal: &Path, config: Option<&Path>) -> ExitCode {
    let Some(config_path) = config else {
        eprintln!("understudy simulate: --replay needs --config");
        return ExitCode::from(crate::client::exit::BAD_CONFIG);
    };
    let config = match crate::config_check::load(config_path) {
        Ok(c) => c,
        Err(problems) => {
            crate::config_check::print_problems(config_path, &problems);
            return ExitCode::from(crate::client::exit::BAD_CONFIG);
        }
    };
    let text = match std::fs::read_to_string(journal) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("understudy simulate: {}: {e}", journal.display());
            return ExitCode::from(crate::client::exit::BAD_CONFIG);
        }
    };
    match understudy_sim::replay::replay_journal(&config, &text) {
        Err(e) => {
            eprintln!("understudy simulate: {}: {e}", journal.display());
            ExitCode::from(crate::client::exit::BAD_CONFIG)
        }
        Ok(r) => {
            println!(
                "journal of server {}: {} inputs replayed{}",
                r.server,
                r.inputs,
                if r.truncated {
                    " (the journal was full: it ends there)"
                } else {
                    ""
                }
            );
            for (ms, command, reason) in &r.decisions {
                if reason.is_empty() {
                    println!("{ms:>12.3} ms  {command}");
                } else {
                    println!("{ms:>12.3} ms  {command}\n                 because {reason}");
                }
            }
            if r.differences.is_empty() {
                println!("the replay decided exactly as the server did");
                ExitCode::SUCCESS
            } else {
                for d in &r.differences {
                    println!("difference: {d}");
                }
                ExitCode::from(1)
            }
        }
    }
}
