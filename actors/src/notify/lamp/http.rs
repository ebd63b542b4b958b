//! The HTTP command interface of PATLITE lamps (LA6-POE and others):
//! `GET /api/control?alert=XXXXXX`, six digits for tiers 1-5 and the
//! buzzer. The body of the answer is `Success.` or `Error.`.
//!
//! One request per connection (`Connection: close`); the answer may carry a
//! `Content-Length`, be chunked, or end when the lamp closes.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWriteExt};

use super::config::Lamp;
use super::net::{bounded, connect, excerpt, read_reply, Failure};
use super::LampState;

/// Answers are a few bytes; anything past this is not a lamp's answer.
const MAX_ANSWER: usize = 16 * 1024;

/// `/api/control?alert=001000`
pub fn control_path(state: LampState) -> String {
    format!("/api/control?alert={}", state.digits())
}

/// The whole request for `state`.
pub fn request(lamp: &Lamp, state: LampState) -> String {
    let host = match lamp.ip() {
        Some(std::net::IpAddr::V6(ip)) => format!("[{ip}]"),
        Some(ip) => ip.to_string(),
        None => lamp.address.clone(),
    };
    let host = match lamp.port() {
        80 => host,
        port => format!("{host}:{port}"),
    };
    format!(
        "GET {} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: understudy\r\nConnection: close\r\n\r\n",
        control_path(state)
    )
}

/// An answer read so far.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Answer {
    /// More bytes are needed.
    Partial,
    Complete {
        status: u16,
        body: Vec<u8>,
    },
    Invalid(String),
}

/// What the head of an answer says.
#[derive(Debug, Clone, Copy)]
struct Head {
    status: u16,
    length: Option<usize>,
    chunked: bool,
}

/// Reads the head (the bytes before the blank line); an error is the
/// answer's verdict.
fn head(bytes: &[u8]) -> Result<Head, Answer> {
    let head = String::from_utf8_lossy(bytes);
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.split(' ');
    let status = match (parts.next(), parts.next()) {
        (Some(v), Some(code)) if v.starts_with("HTTP/") && code.len() == 3 => {
            match code.parse::<u16>() {
                Ok(c) => c,
                Err(_) => {
                    return Err(Answer::Invalid(format!(
                        "bad status line: {}",
                        excerpt(status_line.as_bytes(), 60)
                    )))
                }
            }
        }
        _ => {
            return Err(Answer::Invalid(format!(
                "not an HTTP answer: {}",
                excerpt(status_line.as_bytes(), 60)
            )))
        }
    };
    let mut length = None;
    let mut chunked = false;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            match value.parse::<usize>() {
                Ok(n) => length = Some(n),
                Err(_) => {
                    return Err(Answer::Invalid(format!(
                        "bad Content-Length: {}",
                        excerpt(value.as_bytes(), 30)
                    )))
                }
            }
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.to_ascii_lowercase().contains("chunked");
        }
    }
    Ok(Head {
        status,
        length,
        chunked,
    })
}

/// Parses what has arrived; `closed`: the lamp has closed the connection,
/// so nothing more will come.
pub(super) fn parse(buf: &[u8], closed: bool) -> Answer {
    let Some(head_end) = find(buf, b"\r\n\r\n") else {
        return if closed {
            Answer::Invalid(if buf.is_empty() {
                "the lamp closed the connection without an answer".into()
            } else {
                format!("not an HTTP answer: {}", excerpt(buf, 60))
            })
        } else {
            Answer::Partial
        };
    };
    let Head {
        status,
        length,
        chunked,
    } = match head(&buf[..head_end]) {
        Ok(head) => head,
        Err(verdict) => return verdict,
    };
    let rest = &buf[head_end + 4..];
    if chunked {
        return match dechunk(rest) {
            Some(body) => Answer::Complete { status, body },
            None if closed => Answer::Invalid("the chunked answer is cut short".into()),
            None => Answer::Partial,
        };
    }
    match length {
        Some(n) if rest.len() >= n => Answer::Complete {
            status,
            body: rest[..n].to_vec(),
        },
        Some(_) if closed => {
            Answer::Invalid("the answer is shorter than its Content-Length".into())
        }
        Some(_) => Answer::Partial,
        None if closed => Answer::Complete {
            status,
            body: rest.to_vec(),
        },
        None => Answer::Partial,
    }
}

/// Tells, read after read, whether the answer read so far is no longer
/// `Partial` for [`parse`], looking only at what each read added: going
/// over the whole answer after every read made a lamp that sends it a byte
/// at a time cost time quadratic in its length (16 KB: ~10^8 steps).
#[derive(Debug, Default)]
struct Whole {
    /// How many bytes have been searched for the end of the head.
    looked: usize,
    /// Once the head is in: how the rest of the answer ends.
    end: Option<End>,
}

#[derive(Debug, Clone, Copy)]
enum End {
    /// The head itself is the verdict.
    Now,
    /// This many bytes in all (head and body).
    At(usize),
    /// Chunked: the body starts at `body`; bytes before `seen` were there
    /// at the last check.
    Chunked { body: usize, seen: usize },
    /// No length: the lamp ends the body by closing.
    Closed,
}

impl Whole {
    fn check(&mut self, buf: &[u8]) -> bool {
        let end = match self.end {
            Some(end) => end,
            None => {
                // "\r\n\r\n" may straddle the last read: 3 bytes back.
                let from = self.looked.saturating_sub(3);
                self.looked = buf.len();
                let Some(at) = buf.get(from..).and_then(|b| find(b, b"\r\n\r\n")) else {
                    return false;
                };
                let body = from + at + 4;
                let end = match head(&buf[..from + at]) {
                    Err(_) => End::Now,
                    Ok(Head { chunked: true, .. }) => End::Chunked { body, seen: body },
                    Ok(Head {
                        length: Some(n), ..
                    }) => End::At(body.saturating_add(n)),
                    Ok(_) => End::Closed,
                };
                self.end = Some(end);
                end
            }
        };
        match end {
            End::Now => true,
            End::At(total) => buf.len() >= total,
            End::Closed => false,
            End::Chunked { body, seen } => {
                // A chunked body is only ever completed by a line end.
                let line_ended = buf.get(seen..).is_some_and(|new| new.contains(&b'\n'));
                self.end = Some(End::Chunked {
                    body,
                    seen: buf.len(),
                });
                line_ended && buf.get(body..).and_then(dechunk).is_some()
            }
        }
    }
}

/// The body of a complete chunked answer, `None` while incomplete (or
/// malformed, which ends as "cut short" once the lamp closes).
fn dechunk(mut rest: &[u8]) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line_end = find(rest, b"\r\n")?;
        let size_text = String::from_utf8_lossy(&rest[..line_end]);
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16).ok()?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Some(body);
        }
        // A size no answer can have is as good as an incomplete answer.
        if rest.len() < size.checked_add(2)? {
            return None;
        }
        body.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// What a complete answer means.
pub(super) fn judge(status: u16, body: &[u8]) -> Result<(), Failure> {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if status != 200 {
        return Err(Failure::Refused(if text.is_empty() {
            format!("HTTP status {status}")
        } else {
            format!("HTTP status {status}: {}", excerpt(text.as_bytes(), 60))
        }));
    }
    if text == "Success." {
        Ok(())
    } else if text.starts_with("Error.") {
        Err(Failure::Refused("the lamp answered \"Error.\"".into()))
    } else {
        Err(Failure::Refused(format!(
            "unexpected answer: \"{}\"",
            excerpt(text.as_bytes(), 60)
        )))
    }
}

/// Connects, sends the request for `state`, reads and judges the answer.
pub(super) async fn send(lamp: &Lamp, state: LampState, step: Duration) -> Result<(), Failure> {
    let mut stream = connect(lamp, step).await?;
    bounded(
        step,
        "send the request",
        stream.write_all(request(lamp, state).as_bytes()),
    )
    .await
    .map_err(Failure::Unreachable)?;
    answer(&mut stream, step).await
}

/// Reads and judges the answer (generic, so that the fuzz targets can play
/// the lamp from memory).
pub(crate) async fn answer<S: AsyncRead + Unpin>(
    stream: &mut S,
    step: Duration,
) -> Result<(), Failure> {
    let mut whole = Whole::default();
    let (buf, closed) = read_reply(stream, step, MAX_ANSWER, |b| whole.check(b))
        .await
        .map_err(Failure::Unreachable)?;
    match parse(&buf, closed || buf.len() >= MAX_ANSWER) {
        Answer::Complete { status, body } => judge(status, &body),
        Answer::Partial => Err(Failure::Unreachable("the answer is incomplete".into())),
        Answer::Invalid(e) if buf.is_empty() => Err(Failure::Unreachable(e)),
        Answer::Invalid(e) => Err(Failure::Refused(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::lamp::config::LampProtocol;

    fn lamp(address: &str, port: Option<u16>) -> Lamp {
        Lamp {
            server: "s1".into(),
            address: address.into(),
            protocol: LampProtocol::Http,
            port,
            user: None,
        }
    }

    #[test]
    fn requests() {
        assert_eq!(control_path(LampState::Green), "/api/control?alert=001000");
        assert_eq!(control_path(LampState::Off), "/api/control?alert=000000");
        assert_eq!(
            control_path(LampState::RedBlinking),
            "/api/control?alert=200000"
        );
        assert_eq!(
            request(&lamp("192.0.2.7", None), LampState::Green),
            "GET /api/control?alert=001000 HTTP/1.1\r\nHost: 192.0.2.7\r\nUser-Agent: understudy\r\nConnection: close\r\n\r\n"
        );
        assert!(request(&lamp("::1", Some(8080)), LampState::Off).contains("Host: [::1]:8080\r\n"));
        assert!(request(&lamp("lamp.example", Some(81)), LampState::Off)
            .contains("Host: lamp.example:81\r\n"));
    }

    #[test]
    fn answers() {
        let ok = b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nSuccess.";
        assert_eq!(
            parse(ok, false),
            Answer::Complete {
                status: 200,
                body: b"Success.".to_vec()
            }
        );
        assert_eq!(parse(&ok[..ok.len() - 1], false), Answer::Partial);
        assert!(matches!(
            parse(&ok[..ok.len() - 1], true),
            Answer::Invalid(_)
        ));
        assert_eq!(parse(b"HTTP/1.0 200 OK\r\n", false), Answer::Partial);
        assert_eq!(
            parse(b"HTTP/1.0 200 OK\r\n\r\nError.\r\n", true),
            Answer::Complete {
                status: 200,
                body: b"Error.\r\n".to_vec()
            }
        );
        let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nSucc\r\n4\r\ness.\r\n0\r\n\r\n";
        assert_eq!(
            parse(chunked, false),
            Answer::Complete {
                status: 200,
                body: b"Success.".to_vec()
            }
        );
        assert_eq!(parse(&chunked[..60], false), Answer::Partial);
        let huge = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\nx";
        assert_eq!(parse(huge, false), Answer::Partial);
        assert!(matches!(parse(huge, true), Answer::Invalid(_)));
        assert!(matches!(
            parse(b"SSH-2.0-x\r\n\r\n", true),
            Answer::Invalid(_)
        ));
        assert!(matches!(parse(b"", true), Answer::Invalid(_)));
        assert!(matches!(
            parse(b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", false),
            Answer::Invalid(_)
        ));
    }

    /// `Whole` ends the reading exactly where parsing the whole answer
    /// again would, whatever the reads' sizes.
    #[test]
    fn whole_agrees_with_parse() {
        let answers: &[&[u8]] = &[
            b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nSuccess.more",
            b"HTTP/1.0 200 OK\r\n\r\nError.\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nSucc\r\n4\r\ness.\r\n0\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n1;x=y\r\n\n\r\n0\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\nx\r\n",
            b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 18446744073709551615\r\n\r\nx",
            b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
            b"SSH-2.0-x\r\n\r\n",
            b"\r\n\r\n\r\n\r\n",
        ];
        for answer in answers {
            for piece in 1..=answer.len() {
                let mut whole = Whole::default();
                let mut len = 0;
                let mut ended = None;
                while len < answer.len() {
                    len = (len + piece).min(answer.len());
                    if whole.check(&answer[..len]) {
                        ended = Some(len);
                        break;
                    }
                }
                // Where parse stops answering `Partial`, among the same
                // read boundaries.
                let expected = (1..=answer.len().div_ceil(piece))
                    .map(|k| (k * piece).min(answer.len()))
                    .find(|&n| parse(&answer[..n], false) != Answer::Partial);
                assert_eq!(
                    ended,
                    expected,
                    "{:?} read {piece} at a time",
                    String::from_utf8_lossy(answer)
                );
            }
        }
    }

    #[test]
    fn verdicts() {
        assert_eq!(judge(200, b"Success.\r\n"), Ok(()));
        assert_eq!(
            judge(200, b"Error."),
            Err(Failure::Refused("the lamp answered \"Error.\"".into()))
        );
        assert_eq!(
            judge(404, b""),
            Err(Failure::Refused("HTTP status 404".into()))
        );
        assert!(matches!(judge(200, b"<html>"), Err(Failure::Refused(e)) if e.contains("<html>")));
    }
}
