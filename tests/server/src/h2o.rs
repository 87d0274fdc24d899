//! A real h2o (the Debian package) on loopback: the fastest HTTP/2 server here, used for
//! interop tests and as the HTTP/2 ceiling in benchmarks. It serves the pattern files
//! (`/1k.bin`, `/100k.bin`, `/1m.bin`) over HTTP/1.1 + h2c (prior knowledge and Upgrade) on one
//! port and over TLS with ALPN h2 and http/1.1 on another.

use std::io;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::peer::{find_binary, free_port, retry, scratch_dir, stop, wait_listening};

/// A running h2o; stopped (and its folder removed) on drop.
#[derive(Debug)]
pub struct H2o {
    child: Child,
    dir: PathBuf,
    plain: u16,
    tls: u16,
}

/// The h2o binary, if installed.
pub fn h2o_binary() -> Option<PathBuf> {
    find_binary(&["/usr/bin/h2o", "/usr/sbin/h2o"])
}

impl H2o {
    /// Starts h2o with the certificate `server.crt` / `server.key` found in `cert_dir`.
    pub fn start(cert_dir: &Path) -> io::Result<H2o> {
        let binary = h2o_binary().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                "h2o is not installed (run `make setup`)",
            )
        })?;
        retry(|| H2o::try_start(&binary, cert_dir))
    }

    fn try_start(binary: &Path, cert_dir: &Path) -> io::Result<H2o> {
        let dir = scratch_dir("h2o", &[])?;
        // h2o drops to `nobody` after start: give it copies of the certificate it can read.
        for name in ["server.crt", "server.key"] {
            std::fs::copy(cert_dir.join(name), dir.join(name))?;
        }
        let (plain, tls) = (free_port()?, free_port()?);
        let conf = format!(
            r#"num-threads: 1
user: nobody
error-log: {dir}/error.log
listen:
  host: 127.0.0.1
  port: {plain}
listen:
  host: 127.0.0.1
  port: {tls}
  ssl:
    certificate-file: {dir}/server.crt
    key-file: {dir}/server.key
    ocsp-update-interval: 0
hosts:
  "localhost":
    paths:
      "/":
        file.dir: {dir}/www
"#,
            dir = dir.display()
        );
        std::fs::write(dir.join("h2o.conf"), conf)?;
        let log = dir.join("error.log");
        let mut child = Command::new(binary)
            .arg("-c")
            .arg(dir.join("h2o.conf"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        wait_listening(&mut child, &[plain, tls], &dir, &log)?;
        Ok(H2o {
            child,
            dir,
            plain,
            tls,
        })
    }

    /// `http://127.0.0.1:PORT{path}`: HTTP/1.1, or h2c with prior knowledge.
    pub fn plain_url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.plain)
    }

    /// `https://localhost:PORT{path}`: TLS with ALPN h2 and http/1.1.
    pub fn https_url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.tls)
    }
}

impl Drop for H2o {
    fn drop(&mut self) {
        stop(&mut self.child);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
