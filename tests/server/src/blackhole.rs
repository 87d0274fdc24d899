//! The black holes: `blackhole`, one TCP port that answers on `127.0.0.1` but hangs every connect
//! to `127.0.0.2` and `[::1]` (for Happy Eyeballs tests), and `udp_blackhole`, a UDP port that
//! swallows every datagram (for "UDP blocked" HTTP/3 tests).
//!
//! A TCP connect hangs when the listener's accept queue is full: Linux then drops the SYN
//! without an answer, and the client retransmits it until its own timeout. So the black-holed
//! sides are listeners with a backlog of 0 that never accept, whose queue the server fills at
//! start with a connection of its own (kept open as long as the server runs).

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpSocket, TcpStream};

use crate::stats::Counters;

/// The address whose connects hang (`127.0.0.2` is loopback too on Linux: all of 127/8 is).
pub(crate) const BLACKHOLE_V4: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);

/// How many ports to try before giving up when one of the three addresses has it taken.
const ATTEMPTS: usize = 64;

/// How many connections the server may queue on one black-holed listener before giving up.
const MAX_FILLERS: usize = 4;

/// How long a probing connect may take before the listener counts as black-holed.
const PROBE_TIMEOUT: Duration = Duration::from_millis(200);

/// How long to wait for the kernel to queue a filling connection (its last ACK travels after
/// the client's connect completed).
const QUEUE_WAIT: Duration = Duration::from_millis(50);

/// The bound `blackhole` port.
#[derive(Debug)]
pub(crate) struct BlackHole {
    /// The port, the same on the three addresses.
    pub(crate) port: u16,
    /// `127.0.0.1:port`, to be served like the `http` listener.
    pub(crate) open: TcpListener,
    /// Whether `[::1]:port` is black-holed too.
    pub(crate) has_v6: bool,
    /// The never-accepting listeners and the connections filling their queues.
    pub(crate) held: Held,
}

/// What keeps the black-holed sides black: dropping it closes them.
#[derive(Debug, Default)]
pub(crate) struct Held {
    listeners: Vec<TcpListener>,
    fillers: Vec<TcpStream>,
}

/// A listener on `addr` with a backlog of 0, never to be accepted from.
fn stuck_listener(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.bind(addr)?;
    socket.listen(0)
}

/// Binds `127.0.0.1:P` (open), `127.0.0.2:P` and, with `want_v6`, `[::1]:P` (black-holed) on one
/// port, then fills the black-holed listeners' queues. Fails when `127.0.0.2` cannot be bound or
/// black-holed; `[::1]` is skipped (see [`BlackHole::has_v6`]) when it cannot.
pub(crate) async fn bind(want_v6: bool) -> io::Result<BlackHole> {
    let mut last_err = None;
    for _ in 0..ATTEMPTS {
        let open = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await?;
        let port = open.local_addr()?.port();
        let v4_addr = SocketAddr::from((BLACKHOLE_V4, port));
        let v4 = match stuck_listener(v4_addr) {
            Ok(listener) => listener,
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => {
                last_err = Some(e);
                continue;
            }
            Err(e) => return Err(e),
        };
        let v6_addr = SocketAddr::from((Ipv6Addr::LOCALHOST, port));
        let v6 = match want_v6.then(|| stuck_listener(v6_addr)) {
            Some(Ok(listener)) => Some(listener),
            Some(Err(e)) if e.kind() == io::ErrorKind::AddrInUse => {
                last_err = Some(e);
                continue;
            }
            Some(Err(_)) | None => None,
        };

        let mut held = Held::default();
        let v6_filled = async {
            let mut fillers = Vec::new();
            let filled = match &v6 {
                Some(listener) => fill(listener, v6_addr, &mut fillers).await,
                None => false,
            };
            (filled, fillers)
        };
        let (v4_filled, (v6_filled, v6_fillers)) =
            tokio::join!(fill(&v4, v4_addr, &mut held.fillers), v6_filled);
        if !v4_filled {
            return Err(io::Error::other(format!(
                "{v4_addr} still completes connects with its accept queue full: \
                 this host does not drop SYNs like Linux"
            )));
        }
        held.listeners.push(v4);
        if v6_filled {
            held.listeners.extend(v6);
            held.fillers.extend(v6_fillers);
        }
        return Ok(BlackHole {
            port,
            open,
            has_v6: v6_filled,
            held,
        });
    }
    Err(last_err
        .unwrap_or_else(|| io::Error::other("no port free on 127.0.0.1, 127.0.0.2 and ::1")))
}

/// Fills the accept queue of `listener` (bound on `addr`) with connections kept in `fillers`
/// until a fresh connect no longer completes; returns whether it got there.
async fn fill(listener: &TcpListener, addr: SocketAddr, fillers: &mut Vec<TcpStream>) -> bool {
    for _ in 0..MAX_FILLERS {
        if queue_full(listener) == Some(true) {
            return true;
        }
        match tokio::time::timeout(PROBE_TIMEOUT, TcpStream::connect(addr)).await {
            // The SYN went unanswered: black-holed.
            Err(_) => return true,
            Ok(Ok(stream)) => {
                fillers.push(stream);
                if wait_full(listener).await == Some(true) {
                    return true;
                }
            }
            Ok(Err(_)) => return false,
        }
    }
    false
}

/// Waits up to [`QUEUE_WAIT`] for [`queue_full`] to say yes; `None` when it cannot tell.
async fn wait_full(listener: &TcpListener) -> Option<bool> {
    let deadline = tokio::time::Instant::now() + QUEUE_WAIT;
    loop {
        match queue_full(listener) {
            Some(false) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            other => return other,
        }
    }
}

/// Whether the accept queue of `listener` is full, so the kernel drops new SYNs: on Linux,
/// `TCP_INFO` on a listening socket reports the queue length (`tcpi_unacked`) and the backlog
/// (`tcpi_sacked`), and a SYN is dropped once the length exceeds the backlog. `None` where that
/// cannot be read (then only a probing connect tells).
#[cfg(target_os = "linux")]
fn queue_full(listener: &TcpListener) -> Option<bool> {
    use std::os::fd::AsRawFd;
    /// `TCP_LISTEN` in the kernel's `tcpi_state`.
    const TCP_LISTEN: u8 = 10;
    // SAFETY: `tcp_info` is a plain C struct of integers, for which all zeroes is a value.
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = libc::socklen_t::try_from(std::mem::size_of::<libc::tcp_info>()).ok()?;
    // SAFETY: the descriptor is open (borrowed from `listener`), `info` is writable for `len`
    // bytes and the kernel writes at most `len` bytes.
    let rc = unsafe {
        libc::getsockopt(
            listener.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            std::ptr::from_mut(&mut info).cast(),
            &mut len,
        )
    };
    let needed = std::mem::offset_of!(libc::tcp_info, tcpi_sacked) + std::mem::size_of::<u32>();
    if rc != 0 || usize::try_from(len).ok()? < needed || info.tcpi_state != TCP_LISTEN {
        return None;
    }
    Some(info.tcpi_unacked > info.tcpi_sacked)
}

#[cfg(not(target_os = "linux"))]
fn queue_full(_listener: &TcpListener) -> Option<bool> {
    None
}

/// Reads and drops every datagram `socket` receives, counting `udp_blackholed`, forever. Reading
/// them (rather than leaving them queued) keeps the socket open for more, and an open socket
/// means the kernel sends no ICMP port unreachable: the sender hears nothing at all.
pub(crate) async fn discard(socket: std::net::UdpSocket, counters: Arc<Counters>) {
    let Some(socket) = crate::proxy::udp::into_tokio(socket) else {
        return;
    };
    let mut buf = vec![0u8; 65_536];
    loop {
        if socket.recv_from(&mut buf).await.is_ok() {
            counters.on_udp_blackholed();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn fills_and_hangs() {
        let start = std::time::Instant::now();
        let hole = bind(crate::listen::ipv6_available().await).await.unwrap();
        let took = start.elapsed();
        for listener in &hole.held.listeners {
            // Where the kernel reports the queue, it reports it full.
            assert_ne!(queue_full(listener), Some(false));
        }
        // No probe was needed where the kernel tells.
        if hole.held.listeners.iter().all(|l| queue_full(l).is_some()) {
            assert!(took < PROBE_TIMEOUT, "{took:?}");
        }
        let addr = SocketAddr::from((BLACKHOLE_V4, hole.port));
        assert!(
            tokio::time::timeout(PROBE_TIMEOUT, TcpStream::connect(addr))
                .await
                .is_err()
        );
    }
}
