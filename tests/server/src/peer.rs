//! Shared plumbing for the real servers the tests and benchmarks launch (nginx, h2o): scratch
//! folders with the pattern files, free ports, readiness and shutdown.

use std::io;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

/// Sizes of the pattern files the launched servers serve, by name.
pub const FILES: &[(&str, usize)] = &[
    ("1k.bin", 1024),
    ("100k.bin", 102_400),
    ("1m.bin", 1_048_576),
];

/// A port that was free a moment ago.
pub(crate) fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// The first of `candidates` that exists.
pub(crate) fn find_binary(candidates: &[&str]) -> Option<PathBuf> {
    candidates.iter().map(PathBuf::from).find(|p| p.exists())
}

/// A fresh scratch folder `quiver-{name}-...` with `www/` holding the pattern files, plus `subdirs`.
pub(crate) fn scratch_dir(name: &str, subdirs: &[&str]) -> io::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!(
        "quiver-{name}-{}-{}",
        std::process::id(),
        free_port()?
    ));
    std::fs::create_dir_all(dir.join("www"))?;
    for sub in subdirs {
        std::fs::create_dir_all(dir.join(sub))?;
    }
    for (file, size) in FILES {
        std::fs::write(dir.join("www").join(file), crate::pattern(*size))?;
    }
    Ok(dir)
}

/// Waits until `child` accepts TCP connections on every port (10 s at most); on failure the
/// child is stopped and the folder removed, and the error carries `log`'s content.
pub(crate) fn wait_listening(
    child: &mut Child,
    ports: &[u16],
    dir: &Path,
    log: &Path,
) -> io::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = child.try_wait()? {
            let log = std::fs::read_to_string(log).unwrap_or_default();
            let _ = std::fs::remove_dir_all(dir);
            return Err(io::Error::other(format!("server exited ({status}): {log}")));
        }
        if ports
            .iter()
            .all(|p| TcpStream::connect(("127.0.0.1", *p)).is_ok())
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            stop(child);
            let _ = std::fs::remove_dir_all(dir);
            return Err(io::Error::other("server did not start listening in 10 s"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Stops a launched server: SIGTERM (so a master stops its workers), then SIGKILL after 5 s.
pub(crate) fn stop(child: &mut Child) {
    if let Ok(pid) = libc::pid_t::try_from(child.id()) {
        // SAFETY: signalling our own child process.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Tries `start` a few times (a free port may be taken between choosing and binding it).
pub(crate) fn retry<T>(mut start: impl FnMut() -> io::Result<T>) -> io::Result<T> {
    let mut last = None;
    for _ in 0..5 {
        match start() {
            Ok(v) => return Ok(v),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::other("server did not start")))
}
