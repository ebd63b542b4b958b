//! The metrics endpoint from outside: a plain HTTP/1.0 GET over a TCP
//! socket, a parser of the text exposition, and a real Prometheus (Debian
//! package prometheus) that scrapes the daemon, queried through its HTTP
//! API.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use super::skip::{self, Missing};
use super::{Background, TestDir};

/// One HTTP/1.0 GET of `path` on 127.0.0.1:`port`: (status line, headers
/// lowercased, body). HTTP/1.0: the server closes the connection after the
/// whole body, which needs no chunked decoding.
pub fn http_get(port: u16, path: &str) -> std::io::Result<(String, String, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n")?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| std::io::Error::other(format!("no end of headers in {text:?}")))?;
    let (status, headers) = head.split_once("\r\n").unwrap_or((head, ""));
    Ok((
        status.to_string(),
        headers.to_ascii_lowercase(),
        body.to_string(),
    ))
}

/// `/metrics` of the daemon listening on `port`, its body (empty when it
/// does not answer yet).
pub fn scrape(port: u16) -> String {
    match http_get(port, "/metrics") {
        Ok((status, _, body)) if status.contains(" 200 ") => body,
        _ => String::new(),
    }
}

/// One sample of the exposition.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// The samples of a text exposition (OpenMetrics or Prometheus 0.0.4);
/// panics on a line that is neither a comment nor a sample.
pub fn parse(text: &str) -> Vec<Sample> {
    let mut out = Vec::new();
    for line in text.lines() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (series, rest) = match line.find('{') {
            Some(_) => {
                let close = line
                    .rfind('}')
                    .unwrap_or_else(|| panic!("no }} in {line:?}"));
                (&line[..close + 1], line[close + 1..].trim())
            }
            None => line
                .split_once(' ')
                .unwrap_or_else(|| panic!("no value in {line:?}")),
        };
        let (name, labels) = match series.split_once('{') {
            Some((name, labels)) => (name, parse_labels(labels.trim_end_matches('}'))),
            None => (series, BTreeMap::new()),
        };
        let value = rest.split_whitespace().next().unwrap_or_default();
        let value = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v
                .parse()
                .unwrap_or_else(|e| panic!("value {v:?} of {line:?}: {e}")),
        };
        out.push(Sample {
            name: name.to_string(),
            labels,
            value,
        });
    }
    out
}

fn parse_labels(text: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    let mut rest = text;
    while let Some((key, after)) = rest.split_once("=\"") {
        let mut value = String::new();
        let mut chars = after.char_indices();
        let mut end = after.len();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, other)) => value.push(other),
                    None => {}
                },
                '"' => {
                    end = i + 1;
                    break;
                }
                c => value.push(c),
            }
        }
        labels.insert(key.trim_start_matches(',').trim().to_string(), value);
        rest = &after[end..];
    }
    labels
}

/// The value of the one sample named `name` whose labels include `labels`.
pub fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples
        .iter()
        .find(|s| {
            s.name == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|s| s.value)
}

/// `Some` unless Debian's prometheus is installed.
pub fn need_prometheus() -> Option<Missing> {
    skip::need_program_in("prometheus", "prometheus", &["/usr/bin"])
}

/// A Prometheus of the test's own (its data in the test folder, listening
/// on 127.0.0.1:`port`) that scrapes 127.0.0.1:`target` every second.
pub fn start_prometheus(t: &TestDir, port: u16, target: u16) -> Background {
    let config = t.write(
        "prometheus.yml",
        &format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n\
             scrape_configs:\n  - job_name: understudy\n    static_configs:\n      - targets: ['127.0.0.1:{target}']\n"
        ),
    );
    let out = std::fs::File::create(t.join("prometheus.log")).expect("prometheus.log");
    let mut cmd = Command::new("prometheus");
    cmd.arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            t.join("prometheus-data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(out.try_clone().expect("dup"))
        .stderr(out);
    Background::spawn("prometheus", &mut cmd)
}

/// An instant query through Prometheus's HTTP API: the values of its
/// result (none while the series is unknown or Prometheus not up yet).
pub fn query(port: u16, promql: &str) -> Vec<f64> {
    let path = format!("/api/v1/query?query={}", percent_encode(promql));
    let Ok((status, _, body)) = http_get(port, &path) else {
        return Vec::new();
    };
    if !status.contains(" 200 ") {
        return Vec::new();
    }
    let Ok(v) = serde_json::from_str::<Value>(&body) else {
        return Vec::new();
    };
    v["data"]["result"]
        .as_array()
        .map(|rs| {
            rs.iter()
                .filter_map(|r| r["value"][1].as_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
