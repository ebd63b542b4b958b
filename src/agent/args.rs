//! The command line of `clp_httpmon` / `clp_smtpmon`: an identifier, then
//! either the monitoring options or one action (`--stop [wait]`,
//! `--pause`, `--resume`, `--disp`, `--del`). Options may come before or
//! after the identifier. Every mistake is a message 11, a missing
//! identifier a message 13.

use understudy_actors::model::agent::{
    check_identifier, AgentKind, DEFAULT_INTERVAL, DEFAULT_RESPONSE_WAIT, DEFAULT_RETRIES,
    DEFAULT_SERVER, DEFAULT_STOP_WAIT, MAX_TEXT, MAX_VALUE, MIN_VALUE,
};

/// Monitoring settings (`clp_httpmon ID [-s ...]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Watch {
    /// `-s`: name or address of the server (default `localhost`).
    pub server: String,
    /// `-n`: its port (default 80 / 25).
    pub port: u16,
    /// `-i`: seconds between checks (1-10000, default 60).
    pub interval: u32,
    /// `-c`: failed checks allowed after the first before the command
    /// gives up (1-10000, default 3).
    pub retries: u32,
    /// `-r`: seconds a check may take (1-10000, default 10).
    pub wait: u32,
    /// `-v` (HTTP): `true` for 1.1 (the default), `false` for 1.0.
    pub http11: bool,
    /// `-h` (HTTP): Request-URI (default `/`).
    pub uri: String,
}

impl Watch {
    pub fn defaults(kind: AgentKind) -> Watch {
        Watch {
            server: DEFAULT_SERVER.into(),
            port: kind.default_port(),
            interval: DEFAULT_INTERVAL,
            retries: DEFAULT_RETRIES,
            wait: DEFAULT_RESPONSE_WAIT,
            http11: true,
            uri: "/".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Watch(Watch),
    /// `--stop [wait]`: seconds to wait for the command to end.
    Stop(u32),
    Pause,
    Resume,
    Disp,
    Del,
}

impl Action {
    fn flag(&self) -> &'static str {
        match self {
            Action::Watch(_) => "",
            Action::Stop(_) => "--stop",
            Action::Pause => "--pause",
            Action::Resume => "--resume",
            Action::Disp => "--disp",
            Action::Del => "--del",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    pub identifier: String,
    pub action: Action,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArgError {
    /// Message 13.
    NoIdentifier,
    /// Message 11; the identifier when one was read and valid.
    Invalid {
        identifier: Option<String>,
        detail: String,
    },
}

pub fn parse(kind: AgentKind, args: &[String]) -> Result<Invocation, ArgError> {
    let mut identifier: Option<String> = None;
    let mut action: Option<Action> = None;
    let mut watch = Watch::defaults(kind);
    let mut seen: Vec<&'static str> = Vec::new();
    let mut args = args.iter().peekable();
    let invalid = |identifier: &Option<String>, detail: String| ArgError::Invalid {
        identifier: identifier.clone(),
        detail,
    };
    while let Some(arg) = args.next() {
        let new_action = match arg.as_str() {
            "--stop" => {
                // The wait is optional: a following number is it.
                let wait = match args
                    .next_if(|a| !a.is_empty() && a.bytes().all(|b| b.is_ascii_digit()))
                {
                    Some(v) => number("--stop", v, MIN_VALUE, MAX_VALUE)
                        .map_err(|d| invalid(&identifier, d))?,
                    None => DEFAULT_STOP_WAIT,
                };
                Some(Action::Stop(wait))
            }
            "--pause" => Some(Action::Pause),
            "--resume" => Some(Action::Resume),
            "--disp" => Some(Action::Disp),
            "--del" => Some(Action::Del),
            _ => None,
        };
        if let Some(new) = new_action {
            if let Some(old) = &action {
                return Err(invalid(
                    &identifier,
                    format!("{} and {} cannot be given together", old.flag(), new.flag()),
                ));
            }
            action = Some(new);
            continue;
        }
        let option: &'static str = match arg.as_str() {
            "-s" => "-s",
            "-n" => "-n",
            "-i" => "-i",
            "-c" => "-c",
            // -t: the synopsis of the product's guide spells -r so.
            "-r" | "-t" => "-r",
            "-v" if kind == AgentKind::Http => "-v",
            "-h" if kind == AgentKind::Http => "-h",
            a if a.starts_with('-') => {
                let known = match kind {
                    AgentKind::Http => "-s -n -i -c -r -v -h --stop --pause --resume --disp --del",
                    AgentKind::Smtp => "-s -n -i -c -r --stop --pause --resume --disp --del",
                };
                return Err(invalid(
                    &identifier,
                    format!("unknown option {a} (options: {known})"),
                ));
            }
            _ => {
                if let Some(first) = &identifier {
                    return Err(invalid(
                        &identifier,
                        format!("unexpected argument {arg:?} after the identifier {first}"),
                    ));
                }
                check_identifier(arg).map_err(|d| invalid(&None, d))?;
                identifier = Some(arg.clone());
                continue;
            }
        };
        if seen.contains(&option) {
            return Err(invalid(&identifier, format!("{option} is given twice")));
        }
        seen.push(option);
        let Some(value) = args.next() else {
            return Err(invalid(&identifier, format!("{option} needs a value")));
        };
        let set = match option {
            "-s" => text("-s", value).map(|v| watch.server = v),
            "-n" => number("-n", value, 1, u16::MAX as u32).map(|v| watch.port = v as u16),
            "-i" => number("-i", value, MIN_VALUE, MAX_VALUE).map(|v| watch.interval = v),
            "-c" => number("-c", value, MIN_VALUE, MAX_VALUE).map(|v| watch.retries = v),
            "-r" => number("-r", value, MIN_VALUE, MAX_VALUE).map(|v| watch.wait = v),
            "-v" => match value.as_str() {
                "1.0" | "1.1" => {
                    watch.http11 = value == "1.1";
                    Ok(())
                }
                other => Err(format!("-v {other}: the HTTP version is 1.0 or 1.1")),
            },
            _ => uri(value).map(|v| watch.uri = v),
        };
        set.map_err(|d| invalid(&identifier, d))?;
    }
    let Some(identifier) = identifier else {
        return Err(ArgError::NoIdentifier);
    };
    let action = match action {
        None => Action::Watch(watch),
        Some(a) => {
            if let Some(option) = seen.first() {
                return Err(invalid(
                    &Some(identifier),
                    format!(
                        "{option} applies only when monitoring starts, not with {}",
                        a.flag()
                    ),
                ));
            }
            a
        }
    };
    Ok(Invocation { identifier, action })
}

/// A decimal number in `min..=max`.
fn number(option: &str, value: &str, min: u32, max: u32) -> Result<u32, String> {
    let range = || format!("{option} {value}: out of range {min}-{max}");
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{option} {value:?}: not a number ({min}-{max})"));
    }
    let n: u32 = value.parse().map_err(|_| range())?;
    if n < min || n > max {
        return Err(range());
    }
    Ok(n)
}

/// `-s`: 1 to 255 bytes, printable, no spaces.
fn text(option: &str, value: &str) -> Result<String, String> {
    if value.is_empty() {
        return Err(format!("{option}: the server name is empty"));
    }
    if value.len() > MAX_TEXT {
        return Err(format!(
            "{option}: the server name is {} bytes long; at most {MAX_TEXT} are allowed",
            value.len()
        ));
    }
    if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "{option} {value:?}: spaces and control characters are not allowed"
        ));
    }
    Ok(value.to_string())
}

/// `-h`: up to 255 bytes of printable ASCII without spaces, starting with `/`.
fn uri(value: &str) -> Result<String, String> {
    if value.len() > MAX_TEXT {
        return Err(format!(
            "-h: the Request-URI is {} bytes long; at most {MAX_TEXT} are allowed",
            value.len()
        ));
    }
    if !value.starts_with('/') {
        return Err(format!("-h {value:?}: the Request-URI starts with '/'"));
    }
    if !value.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(format!(
            "-h {value:?}: only printable ASCII without spaces is allowed"
        ));
    }
    Ok(value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(kind: AgentKind, line: &str) -> Result<Invocation, ArgError> {
        let args: Vec<String> = line.split_whitespace().map(String::from).collect();
        parse(kind, &args)
    }

    fn detail(r: Result<Invocation, ArgError>) -> String {
        match r {
            Err(ArgError::Invalid { detail, .. }) => detail,
            other => panic!("expected message 11, got {other:?}"),
        }
    }

    fn watch(r: Result<Invocation, ArgError>) -> Watch {
        match r.unwrap().action {
            Action::Watch(w) => w,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn defaults_of_the_seed() {
        let w = watch(p(AgentKind::Http, "web"));
        assert_eq!(w, Watch::defaults(AgentKind::Http));
        assert_eq!(
            (
                w.server.as_str(),
                w.port,
                w.interval,
                w.retries,
                w.wait,
                w.http11,
                w.uri.as_str()
            ),
            ("localhost", 80, 60, 3, 10, true, "/")
        );
        assert_eq!(watch(p(AgentKind::Smtp, "mail")).port, 25);
    }

    #[test]
    fn every_option() {
        let w = watch(p(
            AgentKind::Http,
            "-s 127.0.0.1 web -n 8080 -i 1 -c 10000 -r 5 -v 1.0 -h /index.html",
        ));
        assert_eq!(w.server, "127.0.0.1");
        assert_eq!((w.port, w.interval, w.retries, w.wait), (8080, 1, 10000, 5));
        assert!(!w.http11);
        assert_eq!(w.uri, "/index.html");
        assert_eq!(watch(p(AgentKind::Smtp, "m -t 7")).wait, 7);
    }

    #[test]
    fn ranges() {
        for opt in ["-i", "-c", "-r"] {
            assert!(p(AgentKind::Smtp, &format!("m {opt} 1")).is_ok());
            assert!(p(AgentKind::Smtp, &format!("m {opt} 10000")).is_ok());
            assert_eq!(
                detail(p(AgentKind::Smtp, &format!("m {opt} 0"))),
                format!("{opt} 0: out of range 1-10000")
            );
            assert_eq!(
                detail(p(AgentKind::Smtp, &format!("m {opt} 10001"))),
                format!("{opt} 10001: out of range 1-10000")
            );
            assert!(detail(p(AgentKind::Smtp, &format!("m {opt} x"))).contains("not a number"));
            assert!(detail(p(AgentKind::Smtp, &format!("m {opt} 99999999999")))
                .contains("out of range"));
        }
        assert!(p(AgentKind::Smtp, "m -n 65535").is_ok());
        assert_eq!(
            detail(p(AgentKind::Smtp, "m -n 0")),
            "-n 0: out of range 1-65535"
        );
        assert_eq!(
            detail(p(AgentKind::Smtp, "m -n 65536")),
            "-n 65536: out of range 1-65535"
        );
        assert!(p(AgentKind::Http, &format!("w -s {}", "a".repeat(255))).is_ok());
        assert!(
            detail(p(AgentKind::Http, &format!("w -s {}", "a".repeat(256)))).contains("256 bytes")
        );
        assert!(p(AgentKind::Http, &format!("w -h /{}", "a".repeat(254))).is_ok());
        assert!(
            detail(p(AgentKind::Http, &format!("w -h /{}", "a".repeat(255)))).contains("256 bytes")
        );
        assert!(detail(p(AgentKind::Http, "w -h index.html")).contains("starts with '/'"));
        assert!(detail(p(AgentKind::Http, "w -v 2.0")).contains("1.0 or 1.1"));
        assert_eq!(
            p(AgentKind::Http, "w --stop 1").unwrap().action,
            Action::Stop(1)
        );
        assert_eq!(
            p(AgentKind::Http, "w --stop 10000").unwrap().action,
            Action::Stop(10000)
        );
        assert_eq!(
            detail(p(AgentKind::Http, "w --stop 10001")),
            "--stop 10001: out of range 1-10000"
        );
        assert_eq!(
            detail(p(AgentKind::Http, "w --stop 0")),
            "--stop 0: out of range 1-10000"
        );
    }

    #[test]
    fn identifiers() {
        assert_eq!(p(AgentKind::Http, "-i 5"), Err(ArgError::NoIdentifier));
        assert_eq!(p(AgentKind::Http, ""), Err(ArgError::NoIdentifier));
        assert!(p(AgentKind::Http, &"a".repeat(255)).is_ok());
        assert!(detail(p(AgentKind::Http, &"a".repeat(256))).contains("256 bytes"));
        assert!(detail(p(AgentKind::Http, "web_1")).contains("'_'"));
        assert!(detail(p(AgentKind::Http, "a b")).contains("unexpected argument"));
    }

    #[test]
    fn actions() {
        let a = |line| p(AgentKind::Smtp, line).unwrap().action;
        assert_eq!(a("m --stop"), Action::Stop(10));
        assert_eq!(a("--stop m"), Action::Stop(10));
        assert_eq!(a("m --pause"), Action::Pause);
        assert_eq!(a("m --resume"), Action::Resume);
        assert_eq!(a("m --disp"), Action::Disp);
        assert_eq!(a("m --del"), Action::Del);
        assert!(detail(p(AgentKind::Smtp, "m --stop --del")).contains("cannot be given together"));
        assert!(detail(p(AgentKind::Smtp, "m --pause -i 5"))
            .contains("applies only when monitoring starts"));
        assert!(detail(p(AgentKind::Smtp, "m -v 1.1")).contains("unknown option -v"));
        assert!(detail(p(AgentKind::Smtp, "m -h /")).contains("unknown option -h"));
        assert!(detail(p(AgentKind::Http, "w -i")).contains("needs a value"));
        assert!(detail(p(AgentKind::Http, "w -i 5 -i 6")).contains("twice"));
        assert!(detail(p(AgentKind::Http, "w --bogus")).contains("unknown option --bogus"));
        match p(AgentKind::Http, "w -i 0") {
            Err(ArgError::Invalid { identifier, .. }) => {
                assert_eq!(identifier.as_deref(), Some("w"))
            }
            other => panic!("{other:?}"),
        }
    }
}
