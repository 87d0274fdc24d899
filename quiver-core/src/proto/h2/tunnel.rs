//! CONNECT streams on an HTTP/2 connection (RFC 9113 §8.5, and extended CONNECT with
//! `:protocol`, RFC 8441): opening one, and reading and writing it as a byte stream.

use std::task::{Context, Poll};

use bytes::Bytes;
use h2::{RecvStream, SendStream};

use super::H2Handle;
use crate::error::{Error, ErrorKind, Result};
use crate::proto::Hold;

/// Opens a CONNECT stream on `handle`'s connection and waits for the response head; the stream
/// stays open both ways.
pub(crate) async fn open_connect_stream(
    handle: &H2Handle,
    head: http::Request<()>,
) -> Result<(http::response::Parts, SendStream<Bytes>, RecvStream)> {
    let shared = &handle.shared;
    if head.extensions().get::<h2::ext::Protocol>().is_some()
        && !handle.send.is_extended_connect_protocol_enabled()
    {
        // SETTINGS_ENABLE_CONNECT_PROTOCOL may arrive after the first SETTINGS frame.
        let mut changes = shared.signals.changed.subscribe();
        let _ =
            tokio::time::timeout(std::time::Duration::from_millis(200), changes.changed()).await;
        if !handle.send.is_extended_connect_protocol_enabled() {
            return Err(Error::new(
                ErrorKind::Protocol,
                format!(
                    "{} does not allow extended CONNECT (SETTINGS_ENABLE_CONNECT_PROTOCOL)",
                    shared.origin
                ),
            ));
        }
    }
    let mut send = handle
        .send
        .clone()
        .ready()
        .await
        .map_err(|e| shared.error(&e))?;
    let (response, stream) = send
        .send_request(head, false)
        .map_err(|e| shared.error(&e))?;
    let response = response.await.map_err(|e| shared.error(&e))?;
    let (parts, recv) = response.into_parts();
    Ok((parts, stream, recv))
}

/// A byte stream over one HTTP/2 stream (a CONNECT tunnel): reads release flow-control
/// capacity as they are consumed; writes wait for send capacity.
pub(crate) struct H2StreamIo {
    send: SendStream<Bytes>,
    recv: RecvStream,
    pending: Bytes,
    eof: bool,
    _hold: Hold,
}

impl H2StreamIo {
    pub(crate) fn new(hold: Hold, send: SendStream<Bytes>, recv: RecvStream) -> H2StreamIo {
        H2StreamIo {
            send,
            recv,
            pending: Bytes::new(),
            eof: false,
            _hold: hold,
        }
    }
}

fn h2_io_error(e: h2::Error) -> std::io::Error {
    if let Some(io) = e.get_io() {
        return std::io::Error::new(io.kind(), io.to_string());
    }
    std::io::Error::new(std::io::ErrorKind::ConnectionReset, e.to_string())
}

impl tokio::io::AsyncRead for H2StreamIo {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        while this.pending.is_empty() && !this.eof {
            match this.recv.poll_data(cx) {
                Poll::Ready(Some(Ok(data))) => {
                    let _ = this.recv.flow_control().release_capacity(data.len());
                    this.pending = data;
                }
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Err(h2_io_error(e))),
                Poll::Ready(None) => this.eof = true,
                Poll::Pending => return Poll::Pending,
            }
        }
        let n = this.pending.len().min(buf.remaining());
        buf.put_slice(&this.pending.split_to(n));
        Poll::Ready(Ok(()))
    }
}

impl tokio::io::AsyncWrite for H2StreamIo {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        if this.send.capacity() == 0 {
            this.send.reserve_capacity(buf.len());
            loop {
                match this.send.poll_capacity(cx) {
                    Poll::Ready(Some(Ok(_))) if this.send.capacity() > 0 => break,
                    Poll::Ready(Some(Ok(_))) => continue,
                    Poll::Ready(Some(Err(e))) => return Poll::Ready(Err(h2_io_error(e))),
                    Poll::Ready(None) => {
                        return Poll::Ready(Err(std::io::Error::new(
                            std::io::ErrorKind::BrokenPipe,
                            "tunnel stream closed",
                        )))
                    }
                    Poll::Pending => return Poll::Pending,
                }
            }
        }
        let n = this.send.capacity().min(buf.len());
        this.send
            .send_data(Bytes::copy_from_slice(&buf[..n]), false)
            .map_err(h2_io_error)?;
        Poll::Ready(Ok(n))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let _ = this.send.send_data(Bytes::new(), true);
        Poll::Ready(Ok(()))
    }
}
