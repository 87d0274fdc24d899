//! Hostile peers, written frame by frame (no HTTP library would send these): each listener
//! misbehaves in one way, whatever the request. HTTP/2 over cleartext TCP (h2c prior
//! knowledge), HTTP/3 over quinn with hand-made frames.
//!
//! - `H2Mode::HeaderFlood`: a response header block that never ends (HEADERS, then CONTINUATION
//!   frames of one huge literal), up to 64 MiB.
//! - `H2Mode::UppercaseHeader`: a response with a header name in upper case (malformed in HTTP/2).
//! - `H2Mode::OversizedFrame`: a frame longer than the client's SETTINGS_MAX_FRAME_SIZE.
//! - `H3Mode::RequestStreamUnknownFrame`: on the request stream, HEADERS, then an unknown frame
//!   type announcing [`GIANT`] bytes (sent in full), then DATA `done`.
//! - `H3Mode::ControlStreamUnknownFrame`: on the control stream, after SETTINGS, an unknown frame
//!   announcing [`GIANT`] bytes (sent in full); requests are answered normally.
//! - `H3Mode::HugeHeadersFrame`: a HEADERS frame announcing 8 MiB on the request stream.
//! - `H3Mode::ShortBody`: `content-length: 10`, then DATA `done` and the end of the stream.
//! - `H3Mode::LongBody`: `content-length: 2`, then DATA `done`.
//! - `H3Mode::FewUniStreams`: QUIC allows the client only two unidirectional streams, so its
//!   HTTP/3 set-up (control and two QPACK streams) can never complete.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// What an unknown frame announces, and what is sent of it.
pub const GIANT: u64 = 32 << 20;

/// How a hostile HTTP/2 listener misbehaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum H2Mode {
    /// A header block that never ends.
    HeaderFlood,
    /// A header name in upper case.
    UppercaseHeader,
    /// A frame over the client's maximum frame size.
    OversizedFrame,
}

/// How a hostile HTTP/3 listener misbehaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum H3Mode {
    /// A giant unknown frame on the request stream.
    RequestStreamUnknownFrame,
    /// A giant unknown frame on the control stream.
    ControlStreamUnknownFrame,
    /// A HEADERS frame announcing 8 MiB.
    HugeHeadersFrame,
    /// A body that ends short of its content-length.
    ShortBody,
    /// A body longer than its content-length.
    LongBody,
    /// Too few unidirectional streams granted for HTTP/3 to start.
    FewUniStreams,
}

fn h2_frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len();
    let mut f = Vec::with_capacity(9 + len);
    f.extend_from_slice(&[(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags]);
    f.extend_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// An HPACK integer with an `n`-bit prefix (RFC 7541 §5.1), `first` holding the prefix's
/// other bits.
fn hpack_int(out: &mut Vec<u8>, first: u8, n: u32, mut value: u64) {
    let max = (1u64 << n) - 1;
    if value < max {
        out.push(first | value as u8);
        return;
    }
    out.push(first | max as u8);
    value -= max;
    while value >= 128 {
        out.push((value % 128) as u8 | 0x80);
        value /= 128;
    }
    out.push(value as u8);
}

/// A literal header field without indexing, new name (RFC 7541 §6.2.2), no Huffman coding.
fn hpack_literal(out: &mut Vec<u8>, name: &[u8], value_len: u64) {
    out.push(0x00);
    hpack_int(out, 0, 7, name.len() as u64);
    out.extend_from_slice(name);
    hpack_int(out, 0, 7, value_len);
}

const STATUS_200: u8 = 0x88;
const FRAME_HEADERS: u8 = 0x1;
const FRAME_SETTINGS: u8 = 0x4;
const FRAME_CONTINUATION: u8 = 0x9;
const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;

/// Reads one frame: (type, flags, stream id); `None` at the end of the connection.
async fn read_h2_frame(io: &mut TcpStream) -> Option<(u8, u8, u32)> {
    let mut head = [0u8; 9];
    io.read_exact(&mut head).await.ok()?;
    let len = (usize::from(head[0]) << 16) | (usize::from(head[1]) << 8) | usize::from(head[2]);
    let mut payload = vec![0u8; len.min(1 << 20)];
    io.read_exact(&mut payload).await.ok()?;
    let stream = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff;
    Some((head[3], head[4], stream))
}

/// Serves one HTTP/2 connection in `mode`.
pub(crate) async fn serve_h2(mut io: TcpStream, mode: H2Mode) {
    let mut preface = [0u8; 24];
    if io.read_exact(&mut preface).await.is_err() {
        return;
    }
    if io
        .write_all(&h2_frame(FRAME_SETTINGS, 0, 0, &[]))
        .await
        .is_err()
    {
        return;
    }
    while let Some((kind, flags, stream)) = read_h2_frame(&mut io).await {
        let answer = match kind {
            FRAME_SETTINGS if flags & 0x1 == 0 => h2_frame(FRAME_SETTINGS, 0x1, 0, &[]),
            FRAME_HEADERS => match respond_h2(&mut io, mode, stream).await {
                Ok(()) => continue,
                Err(_) => return,
            },
            _ => continue,
        };
        if io.write_all(&answer).await.is_err() {
            return;
        }
    }
}

async fn respond_h2(io: &mut TcpStream, mode: H2Mode, stream: u32) -> std::io::Result<()> {
    match mode {
        H2Mode::HeaderFlood => {
            let mut block = vec![STATUS_200];
            hpack_literal(&mut block, b"x-flood", 1 << 30);
            io.write_all(&h2_frame(FRAME_HEADERS, 0, stream, &block))
                .await?;
            let piece = vec![b'a'; 16_384];
            let mut sent = 0u64;
            while sent < 64 << 20 {
                io.write_all(&h2_frame(FRAME_CONTINUATION, 0, stream, &piece))
                    .await?;
                sent += piece.len() as u64;
            }
            Ok(())
        }
        H2Mode::UppercaseHeader => {
            let mut block = vec![STATUS_200];
            hpack_literal(&mut block, b"X-Upper", 1);
            block.push(b'1');
            io.write_all(&h2_frame(
                FRAME_HEADERS,
                END_HEADERS | END_STREAM,
                stream,
                &block,
            ))
            .await
        }
        H2Mode::OversizedFrame => {
            let mut frame = h2_frame(FRAME_HEADERS, END_HEADERS, stream, &[STATUS_200]);
            // Announce 64 KiB: four times SETTINGS_MAX_FRAME_SIZE's default.
            frame[0] = 0x01;
            frame[1] = 0x00;
            frame[2] = 0x00;
            io.write_all(&frame).await?;
            io.write_all(&vec![0u8; 65_535]).await
        }
    }
}

/// A QUIC varint (RFC 9000 §16).
fn varint(out: &mut Vec<u8>, v: u64) {
    match v {
        0..=63 => out.push(v as u8),
        64..=16_383 => out.extend_from_slice(&(0x4000 | v as u16).to_be_bytes()),
        16_384..=1_073_741_823 => out.extend_from_slice(&(0x8000_0000 | v as u32).to_be_bytes()),
        _ => out.extend_from_slice(&(0xc000_0000_0000_0000 | v).to_be_bytes()),
    }
}

fn h3_frame_header(kind: u64, len: u64) -> Vec<u8> {
    let mut f = Vec::new();
    varint(&mut f, kind);
    varint(&mut f, len);
    f
}

/// An unknown (reserved, "grease") frame type: 0x1f * N + 0x21.
const H3_UNKNOWN: u64 = 0x1f * 7 + 0x21;

/// Sends `len` junk bytes on `send`.
async fn junk(send: &mut quinn::SendStream, len: u64) -> Result<(), quinn::WriteError> {
    let piece = vec![b'x'; 64 * 1024];
    let mut left = len;
    while left > 0 {
        let n = left.min(piece.len() as u64) as usize;
        send.write_all(&piece[..n]).await?;
        left -= n as u64;
    }
    Ok(())
}

/// The quinn server configuration of a hostile HTTP/3 listener.
pub(crate) fn h3_server_config(
    tls: Arc<rustls::ServerConfig>,
    mode: H3Mode,
) -> std::io::Result<quinn::ServerConfig> {
    let crypto =
        quinn::crypto::rustls::QuicServerConfig::try_from(tls).map_err(std::io::Error::other)?;
    let mut config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    let mut transport = quinn::TransportConfig::default();
    if mode == H3Mode::FewUniStreams {
        transport.max_concurrent_uni_streams(quinn::VarInt::from_u32(2));
    }
    config.transport_config(Arc::new(transport));
    Ok(config)
}

/// Serves one HTTP/3 connection in `mode`.
pub(crate) async fn serve_h3(incoming: quinn::Incoming, mode: H3Mode) {
    let Ok(conn) = incoming.await else {
        return;
    };
    if mode == H3Mode::FewUniStreams {
        // Nothing to offer: the client cannot even open its control stream and QPACK streams.
        let _ = tokio::time::timeout(Duration::from_secs(60), conn.closed()).await;
        return;
    }
    let control = {
        let conn = conn.clone();
        async move {
            let mut send = conn.open_uni().await?;
            let mut first = vec![0x00];
            first.extend(h3_frame_header(0x04, 0));
            send.write_all(&first).await?;
            if mode == H3Mode::ControlStreamUnknownFrame {
                send.write_all(&h3_frame_header(H3_UNKNOWN, GIANT)).await?;
                junk(&mut send, GIANT).await?;
            }
            // The control stream stays open for the connection's life.
            conn.closed().await;
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
        }
    };
    tokio::spawn(control);
    while let Ok((mut send, mut recv)) = conn.accept_bi().await {
        tokio::spawn(async move {
            // The request itself does not matter: wait for its first bytes, answer as hostile.
            let mut buf = [0u8; 4096];
            let _ = recv.read(&mut buf).await;
            let mut out = h3_frame_header(0x01, 3);
            out.extend_from_slice(&[0x00, 0x00, 0xd9]); // QPACK: :status 200 (static 25)
            let result: Result<(), quinn::WriteError> = async {
                match mode {
                    H3Mode::HugeHeadersFrame => {
                        send.write_all(&h3_frame_header(0x01, 8 << 20)).await?;
                        junk(&mut send, 8 << 20).await?;
                    }
                    H3Mode::ShortBody | H3Mode::LongBody => {
                        let length = if mode == H3Mode::ShortBody {
                            b"10"
                        } else {
                            b"02"
                        };
                        // QPACK: :status 200, then content-length by static name reference (4).
                        let mut block = vec![0x00, 0x00, 0xd9, 0x54, 0x02];
                        block.extend_from_slice(length);
                        let mut head = h3_frame_header(0x01, block.len() as u64);
                        head.extend_from_slice(&block);
                        send.write_all(&head).await?;
                        send.write_all(&h3_frame_header(0x00, 4)).await?;
                        send.write_all(b"done").await?;
                    }
                    H3Mode::RequestStreamUnknownFrame => {
                        send.write_all(&out).await?;
                        send.write_all(&h3_frame_header(H3_UNKNOWN, GIANT)).await?;
                        junk(&mut send, GIANT).await?;
                        send.write_all(&h3_frame_header(0x00, 4)).await?;
                        send.write_all(b"done").await?;
                    }
                    _ => {
                        send.write_all(&out).await?;
                        send.write_all(&h3_frame_header(0x00, 4)).await?;
                        send.write_all(b"done").await?;
                    }
                }
                Ok(())
            }
            .await;
            if result.is_ok() {
                let _ = send.finish();
            }
            let _ = tokio::time::timeout(Duration::from_secs(30), send.stopped()).await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hpack_integers() {
        let mut out = Vec::new();
        hpack_int(&mut out, 0, 5, 10);
        assert_eq!(out, [10]);
        out.clear();
        hpack_int(&mut out, 0, 5, 1337);
        assert_eq!(out, [31, 154, 10]); // RFC 7541 C.1.2
    }
}
