//! The `udp_echo` listener: plain UDP sockets (the same port on `127.0.0.1` and `[::1]`) that
//! send every datagram back to its sender, unchanged. The UDP target of the CONNECT-UDP tunnels.

use std::sync::Arc;

use tokio::net::UdpSocket;

use crate::stats::Counters;

/// A bound std socket as a tokio one (`None` if the runtime cannot take it).
pub(crate) fn into_tokio(socket: std::net::UdpSocket) -> Option<UdpSocket> {
    socket
        .set_nonblocking(true)
        .and_then(|()| UdpSocket::from_std(socket))
        .ok()
}

/// Echoes every datagram `socket` receives to its sender, counting `udp_echoed`, forever.
pub(crate) async fn echo(socket: std::net::UdpSocket, counters: Arc<Counters>) {
    let Some(socket) = into_tokio(socket) else {
        return;
    };
    let mut buf = vec![0u8; 65_536];
    loop {
        // Errors are about one datagram (or an ICMP message about an earlier one): go on.
        let Ok((n, from)) = socket.recv_from(&mut buf).await else {
            continue;
        };
        if socket.send_to(&buf[..n], from).await.is_ok() {
            counters.on_udp_echoed();
        }
    }
}
