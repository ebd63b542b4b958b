//! ExpressCluster's command names (`clpstat`, `clpgrp`, `clpcl`,
//! `clpmonctrl`, `clpdown`, `clpstdn`, `clpcfctrl`, `clpdn1000s`,
//! `clplogcmd`): symlinks
//! to this binary, chosen by argv[0]. Each translates the options we
//! support into the understudy command line; any other option gets a
//! one-line error that names the understudy equivalent. The output is
//! understudy's own (docs/command-names.md).

/// The command names this module answers to.
pub const NAMES: [&str; 9] = [
    "clpstat",
    "clpgrp",
    "clpcl",
    "clpmonctrl",
    "clpdown",
    "clpstdn",
    "clpcfctrl",
    "clpdn1000s",
    "clplogcmd",
];

/// The command name in argv[0], when it is one of [`NAMES`].
pub fn invoked_as() -> Option<String> {
    let arg0 = std::env::args_os().next()?;
    let name = std::path::Path::new(&arg0)
        .file_name()?
        .to_string_lossy()
        .into_owned();
    NAMES.contains(&name.as_str()).then_some(name)
}

/// `name ARGS...` as understudy's own arguments (without the program
/// name); `None` when `name` is none of ours; `Err` with the one-line
/// error for an option we do not support.
pub fn translate(name: &str, args: &[String]) -> Option<Result<Vec<String>, String>> {
    if !NAMES.contains(&name) {
        return None;
    }
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    Some(match name {
        "clpstat" => clpstat(&a),
        "clpgrp" => clpgrp(&a),
        "clpcl" => clpcl(&a),
        "clpmonctrl" => clpmonctrl(&a),
        "clpdown" => shutdown(&a, "server", "clpdown"),
        "clpstdn" => shutdown(&a, "cluster", "clpstdn"),
        "clpcfctrl" => clpcfctrl(&a),
        "clplogcmd" => clplogcmd(&a),
        _ => clpdn1000s(&a),
    })
}

fn own(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

type Out = Result<Vec<String>, String>;

/// `clpstat [-g | -m | -n | -i] [--local]`: understudy's status page has
/// every section (servers, paths, groups, resources, monitors) at once.
fn clpstat(a: &[&str]) -> Out {
    for x in a {
        if !matches!(*x, "-g" | "-m" | "-n" | "-i" | "--local") {
            return Err(format!(
                "clpstat: {x} is not supported; `understudy status` shows every server, group, resource and monitor (`--json` for scripts)"
            ));
        }
    }
    Ok(own(&["status"]))
}

/// `clpgrp -s GROUP [-h HOST]`, `-t GROUP [-h HOST]`, `-m GROUP [-a DEST]`.
fn clpgrp(a: &[&str]) -> Out {
    let usage = "clpgrp: give -s GROUP [-h HOST], -t GROUP or -m GROUP [-a DEST] (understudy group start / stop / move NAME)";
    let (op, rest) = a.split_first().ok_or(usage)?;
    let (group, rest) = match rest.split_first() {
        Some((g, rest)) if !g.starts_with('-') => (*g, rest),
        _ => {
            return Err(match *op {
                "-s" | "-t" | "-m" => format!(
                    "clpgrp {op} without a group is not supported: name the group (understudy group {} NAME)",
                    match *op {
                        "-s" => "start",
                        "-t" => "stop",
                        _ => "move",
                    }
                ),
                "-n" => "clpgrp -n is not supported: `understudy status` shows where each group runs".into(),
                _ => usage.to_string(),
            })
        }
    };
    let (flag, value) = match rest {
        [] => (None, None),
        [f, v] => (Some(*f), Some(*v)),
        [f, ..] => {
            return Err(format!(
                "clpgrp {op} {f} is not supported (understudy group start NAME [--server S], group stop NAME, group move NAME [--to S])"
            ))
        }
    };
    match (*op, flag) {
        ("-s", None) => Ok(own(&["group", "start", group])),
        ("-s", Some("-h")) => Ok(own(&["group", "start", group, "--server", value.unwrap_or_default()])),
        // A group runs on one server: stopped wherever it runs.
        ("-t", None | Some("-h")) => Ok(own(&["group", "stop", group])),
        ("-m", None) => Ok(own(&["group", "move", group])),
        ("-m", Some("-a")) => Ok(own(&["group", "move", group, "--to", value.unwrap_or_default()])),
        ("-n", _) => Err("clpgrp -n is not supported: `understudy status` shows where each group runs".into()),
        (op, Some(f)) => Err(format!(
            "clpgrp {op} {f} is not supported (understudy group start NAME [--server S], group stop NAME, group move NAME [--to S])"
        )),
        (op, None) => Err(format!("clpgrp: {op} is not supported; {usage}")),
    }
}

/// `clpcl -t -a` (stop every server's service), `--suspend`, `--resume`.
fn clpcl(a: &[&str]) -> Out {
    match a {
        ["-t", "-a"] | ["-a", "-t"] => Ok(own(&["cluster", "stop"])),
        ["--suspend"] | ["--suspend", "-a"] | ["-a", "--suspend"] => Ok(own(&["cluster", "suspend"])),
        ["--resume"] | ["--resume", "-a"] | ["-a", "--resume"] => Ok(own(&["cluster", "resume"])),
        ["-t"] => Err("clpcl -t (this server alone) is not supported: stop this server's daemon (SIGTERM, as its service manager does); `understudy cluster stop` stops every server".into()),
        [op, ..] if *op == "-s" || *op == "-r" => Err(format!(
            "clpcl {op} is not supported: the cluster service of a server is its daemon, started with `understudy run` by its service manager (`systemctl start understudy` with the package's unit)"
        )),
        _ => Err("clpcl: give -t -a, --suspend or --resume (understudy cluster stop / suspend / resume)".into()),
    }
}

/// `clpmonctrl -s | -r [-m MONITOR]` (suspend / resume), `-c -m MONITOR`
/// (reset its counters).
fn clpmonctrl(a: &[&str]) -> Out {
    let (op, monitor) = match a {
        [op] => (*op, None),
        [op, "-m", m] | ["-m", m, op] => (*op, Some(*m)),
        _ => return Err("clpmonctrl: give -s or -r, with -m MONITOR or for every monitor, or -c -m MONITOR (understudy monitor suspend / resume / clear)".into()),
    };
    match (op, monitor) {
        ("-s", Some(m)) => Ok(own(&["monitor", "suspend", m])),
        ("-s", None) => Ok(own(&["monitor", "suspend", "--all"])),
        ("-r", Some(m)) => Ok(own(&["monitor", "resume", m])),
        ("-r", None) => Ok(own(&["monitor", "resume", "--all"])),
        ("-c", Some(m)) => Ok(own(&["monitor", "clear", m])),
        (op, _) => Err(format!(
            "clpmonctrl {op} is not supported (understudy monitor suspend / resume NAME|--all, monitor clear NAME)"
        )),
    }
}

/// `clpdown [-r]` / `clpstdn [-r]`: as ExpressCluster's, they do not ask.
fn shutdown(a: &[&str], scope: &str, name: &str) -> Out {
    match a {
        [] => Ok(own(&[scope, "shutdown", "--yes"])),
        ["-r"] => Ok(own(&[scope, "shutdown", "--reboot", "--yes"])),
        [x, ..] => Err(format!(
            "{name}: {x} is not supported (understudy {scope} shutdown [--reboot])"
        )),
    }
}

/// `clpcfctrl --push -x FILE` (or `--push FILE`).
fn clpcfctrl(a: &[&str]) -> Out {
    match a {
        ["--push", "-x", file] | ["--push", file] if !file.starts_with('-') => {
            Ok(own(&["config", "push", file]))
        }
        _ => Err("clpcfctrl: only --push [-x] FILE is supported (understudy config push FILE: the one RON file of the cluster)".into()),
    }
}

/// `clpdn1000s -h SERVER`: switch the server's warning lamp off.
fn clpdn1000s(a: &[&str]) -> Out {
    match a {
        ["-h", server] => Ok(own(&["lamp", "off", "--server", server])),
        _ => Err("usage: clpdn1000s -h SERVER   (switch off the server's warning lamp; understudy lamp off --server SERVER)".into()),
    }
}

/// `clplogcmd -m MESSAGE [-l LEVEL] [--alert] [--syslog]`, in any order,
/// each once: `understudy log`. The level is checked here so that a bad
/// one gets the one-line error too; the message is checked (length) by
/// `understudy log`, which gives one line as well.
fn clplogcmd(a: &[&str]) -> Out {
    const EQUIVALENT: &str =
        "understudy log --message TEXT [--level INFO|WARN|ERR] [--alert] [--syslog]";
    let mut message = None;
    let mut level = None;
    let mut alert = false;
    let mut syslog = false;
    let mut rest = a.iter();
    while let Some(x) = rest.next() {
        let twice = match *x {
            "-m" | "-l" => {
                let Some(value) = rest.next() else {
                    return Err(format!("clplogcmd: {x} needs a value ({EQUIVALENT})"));
                };
                let slot = if *x == "-m" { &mut message } else { &mut level };
                slot.replace(*value).is_some()
            }
            "--alert" => std::mem::replace(&mut alert, true),
            "--syslog" => std::mem::replace(&mut syslog, true),
            "--mail" | "--trap" => {
                return Err(format!(
                    "clplogcmd {x} is not supported: messages go to the alert log (--alert) and syslog (--syslog) only ({EQUIVALENT})"
                ))
            }
            "-i" => {
                return Err(format!(
                    "clplogcmd -i is not supported: every message has id logcmd 1000 ({EQUIVALENT})"
                ))
            }
            _ => return Err(format!("clplogcmd: {x} is not supported ({EQUIVALENT})")),
        };
        if twice {
            return Err(format!("clplogcmd: {x} is given twice ({EQUIVALENT})"));
        }
    }
    let Some(message) = message else {
        return Err(format!("clplogcmd: -m MESSAGE is required ({EQUIVALENT})"));
    };
    let level = match level {
        None => "INFO",
        Some(l) => match understudy_actors::model::catalog::parse_level(l) {
            Ok(_) => l,
            Err(e) => return Err(format!("clplogcmd: -l: {e} ({EQUIVALENT})")),
        },
    };
    let mut own = vec![
        "log".to_string(),
        format!("--message={message}"),
        format!("--level={level}"),
    ];
    if alert {
        own.push("--alert".into());
    }
    if syslog {
        own.push("--syslog".into());
    }
    Ok(own)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(line: &str) -> Option<Result<String, String>> {
        let mut words = line.split_whitespace();
        let name = words.next().unwrap();
        let args: Vec<String> = words.map(String::from).collect();
        translate(name, &args).map(|r| r.map(|v| v.join(" ")))
    }

    #[test]
    fn supported_options_become_understudy_commands() {
        for (line, want) in [
            ("clpstat", "status"),
            ("clpstat -g --local", "status"),
            ("clpgrp -s web", "group start web"),
            ("clpgrp -s web -h s2", "group start web --server s2"),
            ("clpgrp -t web", "group stop web"),
            ("clpgrp -m web", "group move web"),
            ("clpgrp -m web -a s2", "group move web --to s2"),
            ("clpcl -t -a", "cluster stop"),
            ("clpcl --suspend", "cluster suspend"),
            ("clpcl --resume -a", "cluster resume"),
            ("clpmonctrl -s -m httpw", "monitor suspend httpw"),
            ("clpmonctrl -r", "monitor resume --all"),
            ("clpmonctrl -c -m httpw", "monitor clear httpw"),
            ("clpdown", "server shutdown --yes"),
            ("clpdown -r", "server shutdown --reboot --yes"),
            ("clpstdn -r", "cluster shutdown --reboot --yes"),
            (
                "clpcfctrl --push -x /etc/understudy/cluster.ron",
                "config push /etc/understudy/cluster.ron",
            ),
            ("clpdn1000s -h s1", "lamp off --server s1"),
            ("clplogcmd -m done", "log --message=done --level=INFO"),
            (
                "clplogcmd --syslog -l ERR -m -x --alert",
                "log --message=-x --level=ERR --alert --syslog",
            ),
        ] {
            assert_eq!(t(line), Some(Ok(want.to_string())), "{line}");
        }
        // A message of several words, as a shell passes it.
        let args: Vec<String> = ["-m", "backup of db1 done", "-l", "warn", "--alert"]
            .map(String::from)
            .into();
        assert_eq!(
            translate("clplogcmd", &args),
            Some(Ok(vec![
                "log".to_string(),
                "--message=backup of db1 done".into(),
                "--level=warn".into(),
                "--alert".into()
            ]))
        );
    }

    #[test]
    fn other_options_name_the_understudy_equivalent() {
        for (line, names) in [
            ("clpstat -x", "understudy status"),
            ("clpgrp -s", "understudy group start NAME"),
            ("clpgrp -n web", "understudy status"),
            ("clpgrp -t web -f", "group stop NAME"),
            ("clpcl -s", "understudy run"),
            ("clpcl -t", "understudy cluster stop"),
            ("clpmonctrl -x -m a", "understudy monitor"),
            ("clpdown -x", "understudy server shutdown"),
            ("clpcfctrl --pull", "understudy config push"),
            ("clpdn1000s", "understudy lamp off"),
            ("clplogcmd", "understudy log --message TEXT"),
            ("clplogcmd -m", "understudy log --message TEXT"),
            ("clplogcmd -m a -l DEBUG", "understudy log --message TEXT"),
            ("clplogcmd -m a --mail", "understudy log --message TEXT"),
            ("clplogcmd -m a -i 5", "understudy log --message TEXT"),
            (
                "clplogcmd -m a --alert --alert",
                "understudy log --message TEXT",
            ),
            ("clplogcmd -m a -m b", "understudy log --message TEXT"),
            ("clplogcmd -x -m a", "understudy log --message TEXT"),
        ] {
            match t(line) {
                Some(Err(e)) => {
                    assert!(e.contains(names), "{line}: {e}");
                    assert_eq!(e.lines().count(), 1, "{line}: {e}");
                }
                other => panic!("{line}: {other:?}"),
            }
        }
        assert_eq!(t("understudy status"), None);
        assert_eq!(t("clp_httpmon w"), None);
    }
}
