//! A real nginx (the Debian package) on loopback, for interop tests and benchmarks.
//!
//! It serves the same pattern bytes as the test server (`/1k.bin`, `/100k.bin`, `/1m.bin`),
//! plus `/health`, `/echo` (the echo module), `/sink`, `/chunked`, `/close`, `/status/204`,
//! `/status/500` and `/nginx_status` (stub_status counters). Listeners: HTTP/1.1 cleartext,
//! TLS offering h2 and http/1.1 (ALPN), and h2c with prior knowledge.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub use crate::peer::FILES;
use crate::peer::{find_binary, free_port, retry, scratch_dir, stop, wait_listening};

/// Counters read from nginx's stub_status page.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NginxStatus {
    /// Connections open now.
    pub active: u64,
    /// Connections accepted since start.
    pub accepts: u64,
    /// Requests served since start (the stub_status request itself included).
    pub requests: u64,
}

/// A running nginx; stopped (and its folder removed) on drop.
#[derive(Debug)]
pub struct Nginx {
    child: Child,
    dir: PathBuf,
    http: u16,
    https: u16,
    h2c: u16,
}

/// The nginx binary, if installed.
pub fn nginx_binary() -> Option<PathBuf> {
    find_binary(&["/usr/sbin/nginx", "/usr/bin/nginx"])
}

impl Nginx {
    /// Starts nginx with the certificate `server.crt` / `server.key` found in `cert_dir`.
    pub fn start(cert_dir: &Path) -> io::Result<Nginx> {
        let binary = nginx_binary().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                "nginx is not installed (run `make setup`)",
            )
        })?;
        retry(|| Nginx::try_start(&binary, cert_dir))
    }

    fn try_start(binary: &Path, cert_dir: &Path) -> io::Result<Nginx> {
        let dir = scratch_dir("nginx", &["logs", "tmp"])?;
        let (http, https, h2c) = (free_port()?, free_port()?, free_port()?);
        let cert = cert_dir.join("server.crt");
        let key = cert_dir.join("server.key");
        let conf = format!(
            r#"load_module /usr/lib/nginx/modules/ngx_http_echo_module.so;
user root;
worker_processes 1;
daemon off;
pid logs/nginx.pid;
error_log logs/error.log warn;
events {{ worker_connections 4096; multi_accept on; }}
http {{
    access_log off;
    sendfile on; tcp_nodelay on;
    keepalive_requests 1000000;
    keepalive_timeout 75s;
    http2_max_concurrent_streams 128;
    client_body_temp_path tmp/body; proxy_temp_path tmp/proxy; fastcgi_temp_path tmp/fastcgi;
    uwsgi_temp_path tmp/uwsgi; scgi_temp_path tmp/scgi;
    types {{ application/octet-stream bin; }}
    default_type application/octet-stream;
    ssl_certificate     {cert};
    ssl_certificate_key {key};
    ssl_protocols TLSv1.2 TLSv1.3;
    server {{
        listen 127.0.0.1:{http};
        listen [::1]:{http};
        listen 127.0.0.1:{h2c} http2;
        listen [::1]:{h2c} http2;
        listen 127.0.0.1:{https} ssl http2;
        listen [::1]:{https} ssl http2;
        server_name localhost;
        root www;
        location / {{ }}
        location = /health {{ return 200 "ok"; }}
        location = /nginx_status {{ stub_status; }}
        location = /sink {{ client_max_body_size 1g; return 200 "ok"; }}
        location = /echo {{
            client_max_body_size 16m;
            client_body_buffer_size 16m;
            client_body_in_single_buffer on;
            echo_read_request_body;
            echo_request_body;
        }}
        location = /chunked {{ echo "hello"; echo_flush; echo "world"; }}
        location = /close {{ keepalive_timeout 0; return 200 "bye"; }}
        location = /status/204 {{ return 204; }}
        location = /status/500 {{ return 500 "boom"; }}
    }}
}}
"#,
            cert = cert.display(),
            key = key.display(),
        );
        std::fs::write(dir.join("nginx.conf"), conf)?;
        let mut child = Command::new(binary)
            .arg("-p")
            .arg(&dir)
            .arg("-c")
            .arg("nginx.conf")
            .arg("-e")
            .arg("logs/error.log")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        wait_listening(
            &mut child,
            &[http, https, h2c],
            &dir,
            &dir.join("logs/error.log"),
        )?;
        Ok(Nginx {
            child,
            dir,
            http,
            https,
            h2c,
        })
    }

    /// `http://127.0.0.1:PORT{path}` (HTTP/1.1 cleartext).
    pub fn http_url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.http)
    }

    /// `http://[::1]:PORT{path}` (HTTP/1.1 cleartext over IPv6).
    pub fn http_url_v6(&self, path: &str) -> String {
        format!("http://[::1]:{}{path}", self.http)
    }

    /// `https://localhost:PORT{path}` (TLS, ALPN h2 and http/1.1).
    pub fn https_url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.https)
    }

    /// `http://127.0.0.1:PORT{path}` on the h2c (prior knowledge) listener.
    pub fn h2c_url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.h2c)
    }

    /// The HTTP/1.1 cleartext port.
    pub fn http_port(&self) -> u16 {
        self.http
    }

    /// Reads the stub_status counters over a fresh HTTP/1.1 connection.
    pub fn status(&self) -> io::Result<NginxStatus> {
        let mut s = TcpStream::connect(("127.0.0.1", self.http))?;
        s.set_read_timeout(Some(Duration::from_secs(5)))?;
        s.write_all(b"GET /nginx_status HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")?;
        let mut text = String::new();
        s.read_to_string(&mut text)?;
        // "Active connections: 1 \nserver accepts handled requests\n 5 5 9 \n..."
        let body = text.split("\r\n\r\n").nth(1).unwrap_or_default();
        let numbers: Vec<u64> = body
            .split(|c: char| !c.is_ascii_digit())
            .filter(|t| !t.is_empty())
            .filter_map(|t| t.parse().ok())
            .collect();
        match numbers.as_slice() {
            [active, accepts, _handled, requests, ..] => Ok(NginxStatus {
                active: *active,
                accepts: *accepts,
                requests: *requests,
            }),
            _ => Err(io::Error::other(format!("unexpected stub_status: {body}"))),
        }
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        stop(&mut self.child);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
