//! The `raw` listener: hand-written HTTP/1.1 answers for fault injection.

use std::io;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::stats::Counters;

/// Largest request head accepted.
const MAX_HEAD: usize = 64 * 1024;

/// `/malformed`: a non-numeric content-length.
pub(crate) const MALFORMED: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\nhello";
/// `/garbage`: not HTTP at all.
pub(crate) const GARBAGE: &[u8] = b"THIS IS NOT HTTP\r\n\r\n";
/// `/truncated-chunked`: one whole chunk, then a chunk announced as 16 bytes cut after 5.
pub(crate) const TRUNCATED_CHUNKED: &[u8] =
    b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n10\r\nworld";
/// `/trailers`: a chunked body with trailers, sent whatever the request's `TE`.
pub(crate) const TRAILERS: &[u8] = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\
trailer: x-trailer-one, x-trailer-two\r\n\r\n\
e\r\nhello trailers\r\n0\r\nx-trailer-one: 1\r\nx-trailer-two: 2\r\n\r\n";
/// Any other path.
pub(crate) const OK: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";

/// What the request head says.
struct Head {
    path: String,
    content_length: u64,
    /// The body length cannot be skipped (chunked) or the client asked to close.
    must_close: bool,
}

fn parse_head(head: &[u8]) -> Option<Head> {
    let text = std::str::from_utf8(head).ok()?;
    let mut lines = text.split("\r\n");
    let mut request_line = lines.next()?.split(' ');
    let (_method, target, version) = (
        request_line.next()?,
        request_line.next()?,
        request_line.next()?,
    );
    let path = target.split('?').next().unwrap_or("").to_owned();
    let mut content_length = 0;
    let mut must_close = version == "HTTP/1.0";
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            content_length = value.parse().ok()?;
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            must_close = true;
        } else if name.eq_ignore_ascii_case("connection") {
            must_close |= value
                .split(',')
                .any(|t| t.trim().eq_ignore_ascii_case("close"));
        }
    }
    Some(Head {
        path,
        content_length,
        must_close,
    })
}

/// Reads until a full request head is in `buf`; returns its length (with the blank line), or
/// `None` at EOF or when the head is too large or cannot be read.
async fn read_head<S: AsyncRead + Unpin>(stream: &mut S, buf: &mut Vec<u8>) -> Option<usize> {
    loop {
        if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            return Some(pos + 4);
        }
        if buf.len() > MAX_HEAD {
            return None;
        }
        let mut chunk = [0u8; 8192];
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// Discards `len` body bytes, taking first what is already buffered.
async fn skip_body<S: AsyncRead + Unpin>(
    stream: &mut S,
    buf: &mut Vec<u8>,
    mut len: u64,
) -> io::Result<()> {
    let from_buf = (buf.len() as u64).min(len) as usize;
    buf.drain(..from_buf);
    len -= from_buf as u64;
    let mut chunk = [0u8; 8192];
    while len > 0 {
        let want = (chunk.len() as u64).min(len) as usize;
        let n = stream.read(&mut chunk[..want]).await?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        len -= n as u64;
    }
    Ok(())
}

/// Closes the connection cleanly: FIN, then discard what the client still sends for a moment so
/// the kernel does not answer unread data with a reset.
async fn close<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S) {
    let _ = stream.shutdown().await;
    let drain = async {
        let mut chunk = [0u8; 8192];
        while let Ok(n) = stream.read(&mut chunk).await {
            if n == 0 {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_millis(500), drain).await;
}

/// Serves one `raw` connection.
pub(crate) async fn serve<S>(mut stream: S, counters: &Counters)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut buf = Vec::new();
    loop {
        let Some(head_len) = read_head(&mut stream, &mut buf).await else {
            return;
        };
        let head: Vec<u8> = buf.drain(..head_len).collect();
        counters.on_request();
        let Some(head) = parse_head(&head) else {
            let _ = stream
                .write_all(
                    b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                )
                .await;
            return close(stream).await;
        };
        let (answer, keep_alive): (&[u8], bool) = match head.path.as_str() {
            "/malformed" => (MALFORMED, false),
            "/garbage" => (GARBAGE, false),
            "/close-immediately" => (b"", false),
            "/truncated-chunked" => (TRUNCATED_CHUNKED, false),
            "/trailers" => (TRAILERS, true),
            _ => (OK, true),
        };
        let keep_alive = keep_alive && !head.must_close;
        if keep_alive
            && skip_body(&mut stream, &mut buf, head.content_length)
                .await
                .is_err()
        {
            return;
        }
        if stream.write_all(answer).await.is_err() || stream.flush().await.is_err() {
            return;
        }
        if !keep_alive {
            return close(stream).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_heads() {
        let h = parse_head(b"GET /x?y=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n").unwrap();
        assert_eq!(h.path, "/x");
        assert_eq!(h.content_length, 5);
        assert!(!h.must_close);
        let h = parse_head(b"GET / HTTP/1.1\r\nConnection: keep-alive, Close\r\n\r\n").unwrap();
        assert!(h.must_close);
        assert!(parse_head(b"GET\r\n\r\n").is_none());
    }
}
