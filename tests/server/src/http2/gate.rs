//! A filter on the bytes the client sends, which makes `goaway_after` exact.
//!
//! h2 chooses the last-stream-id of its GOAWAY itself: the highest stream whose HEADERS it has
//! read by the time the GOAWAY is written (for a graceful shutdown: when the ACK of its
//! shutdown PING arrives). A client that opens many streams at once has usually sent all their
//! HEADERS before the server accepted the N-th one, so h2 would name a later stream.
//!
//! The gate parses the frames (9-byte headers only, never HPACK) and hands h2 the HEADERS of
//! the first `limit` new streams only. From the HEADERS that opens stream `limit + 1` it holds
//! back every header block and every frame of a held or newer stream; other frames (PING,
//! SETTINGS, WINDOW_UPDATE, DATA and RST_STREAM of the streams already passed) still go
//! through, out of order, so the accepted streams go on and h2 receives its PING ACK. When the
//! ACK of h2's shutdown PING has been classified, the held bytes follow it, in their order: h2
//! reads the ACK first, fixes the GOAWAY's last-stream-id at the `limit`-th stream, and then
//! decodes the held header blocks (keeping its HPACK state right) and ignores those streams.
//! After that the gate is a plain pass-through.

use std::collections::HashSet;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::mpsc::UnboundedSender;

use crate::endpoints::ConnControl;

/// `PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n`, passed through unparsed.
const PREFACE_LEN: usize = 24;
const FRAME_HEADER_LEN: usize = 9;

const HEADERS: u8 = 0x1;
const PUSH_PROMISE: u8 = 0x5;
const PING: u8 = 0x6;
const CONTINUATION: u8 = 0x9;
const ACK: u8 = 0x1;

/// The payload of h2's graceful-shutdown PING (`h2::frame::Ping::SHUTDOWN`, not exported).
const SHUTDOWN_PING: [u8; 8] = [0x0b, 0x7b, 0xa2, 0xf0, 0x8b, 0x9b, 0xfe, 0x54];

/// How much is read from the transport at a time.
const READ_CHUNK: usize = 16 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Counting new streams; everything passes.
    Counting,
    /// Past the `limit`-th stream: header blocks and newer streams are held back.
    Holding,
    /// h2 has (or will have, before it reads anything held) its GOAWAY fixed: pass-through.
    Open,
}

/// Wraps the transport of an HTTP/2 connection on which `goaway_after` is set.
pub(crate) struct Gate<T> {
    io: T,
    limit: u64,
    /// New streams handed to h2.
    opened: u64,
    /// The highest stream id handed to h2 in a HEADERS frame.
    highest: u32,
    preface_left: usize,
    mode: Mode,
    /// Read from the transport, not classified yet (an incomplete frame).
    pending: BytesMut,
    /// Classified, for h2, in order.
    ready: BytesMut,
    /// Held back, in order.
    held: BytesMut,
    held_streams: HashSet<u32>,
    scratch: Box<[u8]>,
    /// Told to start the GOAWAY when the gate starts holding.
    control: UnboundedSender<ConnControl>,
}

impl<T> Gate<T> {
    /// Lets h2 see the HEADERS of `limit` new streams only, until its GOAWAY is fixed.
    pub(crate) fn new(io: T, limit: u64, control: UnboundedSender<ConnControl>) -> Self {
        Gate {
            io,
            limit,
            opened: 0,
            highest: 0,
            preface_left: PREFACE_LEN,
            mode: Mode::Counting,
            pending: BytesMut::new(),
            ready: BytesMut::new(),
            held: BytesMut::new(),
            held_streams: HashSet::new(),
            scratch: vec![0; READ_CHUNK].into_boxed_slice(),
            control,
        }
    }

    /// Moves what can be classified from `pending` to `ready` or `held`.
    fn classify(&mut self) {
        loop {
            if self.mode == Mode::Open {
                let rest = self.pending.split();
                self.ready.unsplit(rest);
                return;
            }
            if self.preface_left > 0 {
                let n = self.preface_left.min(self.pending.len());
                let preface = self.pending.split_to(n);
                self.ready.unsplit(preface);
                self.preface_left -= n;
                if self.preface_left > 0 {
                    return;
                }
                continue;
            }
            if self.pending.len() < FRAME_HEADER_LEN {
                return;
            }
            let head = &self.pending[..FRAME_HEADER_LEN];
            let len =
                (usize::from(head[0]) << 16) | (usize::from(head[1]) << 8) | usize::from(head[2]);
            let kind = head[3];
            let flags = head[4];
            let stream = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff;
            if self.pending.len() < FRAME_HEADER_LEN + len {
                return;
            }
            let frame = self.pending.split_to(FRAME_HEADER_LEN + len);
            let shutdown_ack =
                kind == PING && flags & ACK != 0 && frame[FRAME_HEADER_LEN..] == SHUTDOWN_PING;
            match self.mode {
                Mode::Counting => {
                    if kind == HEADERS && stream > self.highest {
                        if self.opened >= self.limit {
                            self.mode = Mode::Holding;
                            self.hold(frame, stream);
                            let _ = self.control.send(ConnControl::GoAway);
                            continue;
                        }
                        self.opened += 1;
                        self.highest = stream;
                    }
                    self.ready.unsplit(frame);
                    if shutdown_ack {
                        // h2 fixes its GOAWAY when it reads this, before anything after it.
                        self.mode = Mode::Open;
                    }
                }
                Mode::Holding => {
                    let header_block = matches!(kind, HEADERS | CONTINUATION | PUSH_PROMISE)
                        || kind > CONTINUATION;
                    let held_stream = stream != 0
                        && (stream > self.highest || self.held_streams.contains(&stream));
                    if header_block || held_stream {
                        self.hold(frame, stream);
                    } else {
                        self.ready.unsplit(frame);
                        if shutdown_ack {
                            let held = self.held.split();
                            self.ready.unsplit(held);
                            self.held_streams.clear();
                            self.mode = Mode::Open;
                        }
                    }
                }
                Mode::Open => unreachable!("handled above"),
            }
        }
    }

    fn hold(&mut self, frame: BytesMut, stream: u32) {
        if stream != 0 {
            self.held_streams.insert(stream);
        }
        self.held.unsplit(frame);
    }

    /// The client is gone: hand h2 whatever is left, in order, then EOF.
    fn flush_all(&mut self) {
        let held = self.held.split();
        self.ready.unsplit(held);
        let rest = self.pending.split();
        self.ready.unsplit(rest);
        self.mode = Mode::Open;
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Gate<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if !this.ready.is_empty() {
                let n = this.ready.len().min(buf.remaining());
                buf.put_slice(&this.ready.split_to(n));
                return Poll::Ready(Ok(()));
            }
            if this.mode == Mode::Open && this.pending.is_empty() {
                // Plain pass-through from now on.
                return Pin::new(&mut this.io).poll_read(cx, buf);
            }
            let mut chunk = ReadBuf::new(&mut this.scratch);
            ready!(Pin::new(&mut this.io).poll_read(cx, &mut chunk))?;
            let n = chunk.filled().len();
            if n == 0 {
                this.flush_all();
                if this.ready.is_empty() {
                    return Poll::Ready(Ok(()));
                }
                continue;
            }
            this.pending.extend_from_slice(&this.scratch[..n]);
            this.classify();
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Gate<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
        let len = payload.len();
        let mut out = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
        out.extend_from_slice(&stream.to_be_bytes());
        out.extend_from_slice(payload);
        out
    }

    fn feed(gate: &mut Gate<tokio::io::Empty>, bytes: &[u8]) -> Vec<u8> {
        gate.pending.extend_from_slice(bytes);
        gate.classify();
        gate.ready.split().to_vec()
    }

    #[test]
    fn holds_streams_beyond_the_limit_until_the_shutdown_ack() {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let mut gate = Gate::new(tokio::io::empty(), 2, tx);
        let preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
        let settings = frame(0x4, 0, 0, &[]);
        let h1 = frame(HEADERS, 0x4, 1, b"one");
        let h3 = frame(HEADERS, 0x4, 3, b"three");
        let d1 = frame(0x0, 0, 1, b"data1");
        let h5 = frame(HEADERS, 0x4, 5, b"five");
        let d5 = frame(0x0, 0, 5, b"data5");
        let d3 = frame(0x0, 0x1, 3, b"data3");
        let trailers1 = frame(HEADERS, 0x5, 1, b"trailers");
        let ping = frame(PING, 0, 0, &[1; 8]);
        let other_ack = frame(PING, ACK, 0, &[2; 8]);
        let ack = frame(PING, ACK, 0, &SHUTDOWN_PING);
        let h7 = frame(HEADERS, 0x4, 7, b"seven");

        // The preface and the first two streams pass, even split in odd places.
        let mut first = preface.to_vec();
        first.extend(&settings);
        first.extend(&h1);
        first.extend(&h3);
        first.extend(&d1);
        let (a, b) = first.split_at(30);
        let mut out = feed(&mut gate, a);
        out.extend(feed(&mut gate, b));
        assert_eq!(out, first);
        assert!(rx.try_recv().is_err());

        // The third stream is held, with its data; stream 3's data and PINGs go on.
        let mut second = h5.clone();
        second.extend(&d5);
        second.extend(&d3);
        second.extend(&trailers1);
        second.extend(&ping);
        second.extend(&other_ack);
        let mut expected = d3.clone();
        expected.extend(&ping);
        expected.extend(&other_ack);
        assert_eq!(feed(&mut gate, &second), expected);
        assert!(matches!(rx.try_recv(), Ok(ConnControl::GoAway)));

        // The shutdown ACK releases the held frames behind it, in order; then pass-through.
        let mut expected = ack.clone();
        expected.extend(&h5);
        expected.extend(&d5);
        expected.extend(&trailers1);
        expected.extend(&h7);
        let mut third = ack.clone();
        third.extend(&h7);
        assert_eq!(feed(&mut gate, &third), expected);
        assert_eq!(gate.mode, Mode::Open);
    }

    #[test]
    fn a_shutdown_ack_before_the_limit_opens_the_gate() {
        let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
        let mut gate = Gate::new(tokio::io::empty(), 5, tx);
        let mut bytes = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
        bytes.extend(frame(HEADERS, 0x5, 1, b"one"));
        bytes.extend(frame(PING, ACK, 0, &SHUTDOWN_PING));
        assert_eq!(feed(&mut gate, &bytes), bytes);
        assert_eq!(gate.mode, Mode::Open);
    }
}
