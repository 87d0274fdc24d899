//! Hypercorn (with aioquic) on loopback: an HTTP/3 server nobody here wrote, serving
//! `tests/interop/asgi_app.py`. It comes from the project's virtual environment (`.venv`,
//! made by `make setup`), or the one named by `QUIVER_VENV`.

use std::io;
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::peer::{free_port, retry, stop, wait_listening};

/// A running Hypercorn; stopped on drop.
#[derive(Debug)]
pub struct Hypercorn {
    child: Child,
    port: u16,
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The `hypercorn` executable of the project's virtual environment, if installed.
pub fn hypercorn_binary() -> Option<PathBuf> {
    let venv = std::env::var_os("QUIVER_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".venv"));
    Some(venv.join("bin/hypercorn")).filter(|p| p.exists())
}

/// A port free for both TCP and UDP a moment ago.
fn free_dual_port() -> io::Result<u16> {
    for _ in 0..20 {
        let port = free_port()?;
        if UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    Err(io::Error::other("no port free for TCP and UDP"))
}

impl Hypercorn {
    /// Starts Hypercorn with `server.crt` / `server.key` from `cert_dir`, HTTP/1.1 and HTTP/2
    /// over TLS on a TCP port and HTTP/3 on the same UDP port.
    pub fn start(cert_dir: &Path) -> io::Result<Hypercorn> {
        let binary = hypercorn_binary().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                "hypercorn is not installed in .venv (run `make setup`)",
            )
        })?;
        retry(|| {
            let port = free_dual_port()?;
            let log = std::env::temp_dir().join(format!(
                "quiver-hypercorn-{}-{port}.log",
                std::process::id()
            ));
            let mut child = Command::new(&binary)
                .current_dir(repo_root().join("tests/interop"))
                .arg("--bind")
                .arg(format!("127.0.0.1:{port}"))
                .arg("--quic-bind")
                .arg(format!("127.0.0.1:{port}"))
                .arg("--certfile")
                .arg(cert_dir.join("server.crt"))
                .arg("--keyfile")
                .arg(cert_dir.join("server.key"))
                .arg("--log-level")
                .arg("warning")
                .arg("asgi_app:app")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&log)?)
                .spawn()?;
            wait_listening(
                &mut child,
                &[port],
                &std::env::temp_dir().join("quiver-hypercorn-none"),
                &log,
            )?;
            Ok(Hypercorn { child, port })
        })
    }

    /// `https://localhost:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.port)
    }
}

impl Drop for Hypercorn {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}
