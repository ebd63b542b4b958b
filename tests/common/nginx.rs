//! nginx as the HTTP peer of the tests (Debian package nginx): started in
//! the foreground with everything it writes in the test folder.

use std::net::{TcpListener, TcpStream};
use std::process::Command;

use super::{wait_for, Background, TestDir, DEADLINE};

pub const NGINX: &str = "/usr/sbin/nginx";

/// A port on 127.0.0.1 that nothing listens on (bound, then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

/// Waits until 127.0.0.1:`port` accepts connections; fails at once if the
/// server meant to listen there has exited.
pub fn wait_listening(port: u16, server: &mut Background) {
    wait_for(&format!("127.0.0.1:{port} to listen"), DEADLINE, || {
        server.assert_running();
        TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
}

/// nginx in the foreground (no master process) with everything it writes in
/// the test folder. `/health` answers 500 and `/` 503 while the file `fail`
/// exists, 200 otherwise. Each request is a line of `access.log` in the
/// folder (`HEAD /health HTTP/1.1`).
pub fn start_nginx(t: &TestDir, port: u16) -> Background {
    let dir = t.path().display().to_string();
    std::fs::create_dir_all(t.join("tmp")).expect("mkdir tmp");
    let conf = t.write(
        "nginx.conf",
        &format!(
            r#"daemon off;
master_process off;
worker_processes 1;
error_log {dir}/error.log;
pid {dir}/nginx.pid;
events {{ worker_connections 64; }}
http {{
    log_format requests '$request';
    access_log {dir}/access.log requests;
    client_body_temp_path {dir}/tmp/body;
    proxy_temp_path {dir}/tmp/proxy;
    fastcgi_temp_path {dir}/tmp/fastcgi;
    uwsgi_temp_path {dir}/tmp/uwsgi;
    scgi_temp_path {dir}/tmp/scgi;
    server {{
        listen 127.0.0.1:{port};
        location = /health {{
            if (-f {dir}/fail) {{ return 500; }}
            return 200;
        }}
        location / {{
            if (-f {dir}/fail) {{ return 503; }}
            return 200;
        }}
    }}
}}
"#
        ),
    );
    let out = std::fs::File::create(t.join("nginx.out")).expect("nginx.out");
    let mut cmd = Command::new(NGINX);
    cmd.arg("-p")
        .arg(format!("{dir}/"))
        .arg("-e")
        .arg(t.join("error.log"))
        .arg("-c")
        .arg(&conf)
        .stdout(out.try_clone().expect("dup"))
        .stderr(out);
    let mut nginx = Background::spawn("nginx", &mut cmd);
    wait_listening(port, &mut nginx);
    nginx
}

/// `Some` (to skip with) unless nginx is installed.
pub fn need_nginx() -> Option<super::skip::Missing> {
    (!std::path::Path::new(NGINX).is_file()).then(|| {
        super::skip::missing(
            "nginx",
            format!("{NGINX} is not installed (Debian package nginx)"),
        )
    })
}

/// Requests nginx has logged so far for `uri` (any method).
pub fn requests(t: &TestDir, uri: &str) -> usize {
    std::fs::read_to_string(t.join("access.log"))
        .unwrap_or_default()
        .lines()
        .filter(|l| l.split_whitespace().nth(1) == Some(uri))
        .count()
}
