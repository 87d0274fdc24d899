//! Content decoding (`content-encoding` gzip, deflate, br, zstd, and chains of them) with
//! async-compression, as a stage stacked on the response body: compressed bytes are pulled
//! from the connection only as decoded bytes are taken, so backpressure still reaches the
//! server, and a ratio bound stops decompression bombs.

#[cfg(any(feature = "gzip", feature = "brotli", feature = "zstd"))]
pub(crate) use self::codec::{accept_encoding, codings, wrap};

/// Without any codec compiled in, nothing is asked for and nothing decoded.
#[cfg(not(any(feature = "gzip", feature = "brotli", feature = "zstd")))]
mod off {
    use http::{HeaderMap, HeaderValue};

    use crate::response::ResponseBody;

    pub(crate) enum Coding {}

    pub(crate) fn accept_encoding() -> Option<HeaderValue> {
        None
    }

    pub(crate) fn codings(_: &HeaderMap) -> Option<Vec<Coding>> {
        None
    }

    pub(crate) fn wrap(body: ResponseBody, _: Vec<Coding>, _: u64, _: u64) -> ResponseBody {
        body
    }
}
#[cfg(not(any(feature = "gzip", feature = "brotli", feature = "zstd")))]
pub(crate) use self::off::{accept_encoding, codings, wrap};

#[cfg(any(feature = "gzip", feature = "brotli", feature = "zstd"))]
mod codec {
    use std::io;
    use std::pin::Pin;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{Arc, Mutex};
    use std::task::{Context, Poll};

    use bytes::{Buf, Bytes, BytesMut};
    use http::{HeaderMap, HeaderValue};
    use tokio::io::{AsyncBufRead, AsyncRead, ReadBuf};

    use crate::error::{Error, ErrorKind, Result};
    use crate::response::{LayeredBody, ResponseBody};

    /// Decoded bytes handed out per chunk at most.
    const CHUNK: usize = 64 << 10;
    /// The ratio bound applies only past this many decoded bytes: small bodies cannot hurt.
    const RATIO_FLOOR: u64 = 10 << 20;

    /// A content coding quiver decodes.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub(crate) enum Coding {
        #[cfg(feature = "gzip")]
        Gzip,
        /// `deflate`: zlib-wrapped as specified, or raw deflate as some servers send it.
        #[cfg(feature = "gzip")]
        Deflate,
        #[cfg(feature = "brotli")]
        Brotli,
        #[cfg(feature = "zstd")]
        Zstd,
    }

    impl Coding {
        fn parse(name: &str) -> Option<Option<Coding>> {
            Some(Some(match name.to_ascii_lowercase().as_str() {
                "identity" | "" => return Some(None),
                #[cfg(feature = "gzip")]
                "gzip" | "x-gzip" => Coding::Gzip,
                #[cfg(feature = "gzip")]
                "deflate" => Coding::Deflate,
                #[cfg(feature = "brotli")]
                "br" => Coding::Brotli,
                #[cfg(feature = "zstd")]
                "zstd" => Coding::Zstd,
                _ => return None,
            }))
        }

        fn name(self) -> &'static str {
            match self {
                #[cfg(feature = "gzip")]
                Coding::Gzip => "gzip",
                #[cfg(feature = "gzip")]
                Coding::Deflate => "deflate",
                #[cfg(feature = "brotli")]
                Coding::Brotli => "br",
                #[cfg(feature = "zstd")]
                Coding::Zstd => "zstd",
            }
        }
    }

    /// The `accept-encoding` value offering every coding compiled in.
    pub(crate) fn accept_encoding() -> Option<HeaderValue> {
        static OFFER: std::sync::LazyLock<HeaderValue> = std::sync::LazyLock::new(|| {
            let names: &[&str] = &[
                #[cfg(feature = "gzip")]
                "gzip",
                #[cfg(feature = "gzip")]
                "deflate",
                #[cfg(feature = "brotli")]
                "br",
                #[cfg(feature = "zstd")]
                "zstd",
            ];
            HeaderValue::from_str(&names.join(", ")).unwrap_or(HeaderValue::from_static("gzip"))
        });
        Some(OFFER.clone())
    }

    /// The codings a response's `content-encoding` lists, in the order they were applied, or
    /// `None` when there is nothing to decode or one of them is unknown (then the body is
    /// passed on as it came, as httpx does).
    pub(crate) fn codings(headers: &HeaderMap) -> Option<Vec<Coding>> {
        let mut out = Vec::new();
        for value in headers.get_all(http::header::CONTENT_ENCODING) {
            for name in value.to_str().ok()?.split(',') {
                if let Some(c) = Coding::parse(name.trim())? {
                    out.push(c);
                }
            }
        }
        (!out.is_empty()).then_some(out)
    }

    /// What the raw side and the decoding side share: bytes fed in, the body's own error and
    /// its trailers.
    #[derive(Default)]
    struct Shared {
        compressed: AtomicU64,
        error: Mutex<Option<Error>>,
        trailers: Mutex<Option<HeaderMap>>,
    }

    /// The compressed body as an `AsyncBufRead` for the decoders.
    struct Raw {
        body: ResponseBody,
        chunk: Bytes,
        shared: Arc<Shared>,
    }

    impl AsyncBufRead for Raw {
        fn poll_fill_buf(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<&[u8]>> {
            let this = self.get_mut();
            while this.chunk.is_empty() {
                match std::task::ready!(this.body.poll_chunk(cx)) {
                    Ok(Some(b)) => {
                        this.shared
                            .compressed
                            .fetch_add(b.len() as u64, Ordering::Relaxed);
                        this.chunk = b;
                    }
                    Ok(None) => {
                        if let Some(t) = this.body.trailers() {
                            *this
                                .shared
                                .trailers
                                .lock()
                                .unwrap_or_else(|p| p.into_inner()) = Some(t.clone());
                        }
                        break;
                    }
                    Err(e) => {
                        let shown = e.to_string();
                        *this.shared.error.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
                        return Poll::Ready(Err(io::Error::other(shown)));
                    }
                }
            }
            Poll::Ready(Ok(&this.chunk))
        }

        fn consume(self: Pin<&mut Self>, amt: usize) {
            let this = self.get_mut();
            this.chunk.advance(amt.min(this.chunk.len()));
        }
    }

    impl AsyncRead for Raw {
        fn poll_read(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            let have = std::task::ready!(self.as_mut().poll_fill_buf(cx))?;
            let n = have.len().min(buf.remaining());
            buf.put_slice(&have[..n]);
            self.consume(n);
            Poll::Ready(Ok(()))
        }
    }

    type Input = Pin<Box<dyn AsyncBufRead + Send>>;
    type Output = Pin<Box<dyn AsyncRead + Send>>;

    /// `deflate` as sent: zlib-wrapped (RFC 1950, what the coding means) or raw deflate (what
    /// some servers send), told apart by the zlib header.
    #[cfg(feature = "gzip")]
    struct Deflate {
        undecided: Option<Input>,
        decoder: Option<Output>,
    }

    #[cfg(feature = "gzip")]
    impl AsyncRead for Deflate {
        fn poll_read(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            use async_compression::tokio::bufread::{DeflateDecoder, ZlibDecoder};
            if let Some(input) = &mut self.undecided {
                let head = std::task::ready!(input.as_mut().poll_fill_buf(cx))?;
                if head.is_empty() {
                    return Poll::Ready(Ok(()));
                }
                let zlib = head[0] & 0x0f == 8
                    && head[0] >> 4 <= 7
                    && head
                        .get(1)
                        .is_none_or(|b| (u16::from(head[0]) << 8 | u16::from(*b)) % 31 == 0);
                let input = self.undecided.take().expect("checked above");
                self.decoder = Some(if zlib {
                    let mut d = ZlibDecoder::new(input);
                    d.multiple_members(true);
                    Box::pin(d)
                } else {
                    let mut d = DeflateDecoder::new(input);
                    d.multiple_members(true);
                    Box::pin(d)
                });
            }
            match &mut self.decoder {
                Some(d) => d.as_mut().poll_read(cx, buf),
                None => Poll::Ready(Ok(())),
            }
        }
    }

    /// One decoder over `input`. Every decoder reads its input to the end (multiple members),
    /// so the body below is finished and its connection reused, and data after the end of the
    /// compressed stream is an error rather than ignored.
    fn decoder(coding: Coding, input: Input) -> Output {
        match coding {
            #[cfg(feature = "gzip")]
            Coding::Gzip => {
                let mut d = async_compression::tokio::bufread::GzipDecoder::new(input);
                d.multiple_members(true);
                Box::pin(d)
            }
            #[cfg(feature = "gzip")]
            Coding::Deflate => Box::pin(Deflate {
                undecided: Some(input),
                decoder: None,
            }),
            #[cfg(feature = "brotli")]
            Coding::Brotli => {
                let mut d = async_compression::tokio::bufread::BrotliDecoder::new(input);
                d.multiple_members(true);
                Box::pin(d)
            }
            #[cfg(feature = "zstd")]
            Coding::Zstd => {
                // Windows up to 8 MiB, the bound RFC 9659 sets for HTTP (a hostile server
                // cannot make the decoder hold 128 MiB).
                let mut d = async_compression::tokio::bufread::ZstdDecoder::new_for_http(input);
                d.multiple_members(true);
                Box::pin(d)
            }
        }
    }

    /// The decoding stage.
    struct Decoded {
        reader: Output,
        shared: Arc<Shared>,
        buf: BytesMut,
        decoded: u64,
        max_ratio: u64,
        names: String,
    }

    /// Stacks decoding of `codings` (in the order they were applied) on `body`. `max_ratio`:
    /// `max_decompression_ratio` (0: none); `limit`: `max_response_body` for the decoded body.
    pub(crate) fn wrap(
        body: ResponseBody,
        codings: Vec<Coding>,
        max_ratio: u64,
        limit: u64,
    ) -> ResponseBody {
        let shared = Arc::new(Shared::default());
        let names = codings
            .iter()
            .map(|c| c.name())
            .collect::<Vec<_>>()
            .join(", ");
        let mut input: Input = Box::pin(Raw {
            body,
            chunk: Bytes::new(),
            shared: shared.clone(),
        });
        let mut remaining = codings.len();
        let mut reader: Option<Output> = None;
        for coding in codings.into_iter().rev() {
            remaining -= 1;
            let out = decoder(coding, input);
            if remaining == 0 {
                reader = Some(out);
                break;
            }
            input = Box::pin(tokio::io::BufReader::with_capacity(CHUNK, out));
        }
        let Some(reader) = reader else {
            return ResponseBody::empty();
        };
        ResponseBody::layered(
            Box::new(Decoded {
                reader,
                shared,
                buf: BytesMut::new(),
                decoded: 0,
                max_ratio,
                names,
            }),
            limit,
        )
    }

    impl Decoded {
        fn failure(&self, e: io::Error) -> Error {
            if let Some(own) = self
                .shared
                .error
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take()
            {
                return own;
            }
            Error::with_source(
                ErrorKind::Decoding,
                format!("the response body is not valid `{}` data ({e})", self.names),
                e,
            )
        }
    }

    impl LayeredBody for Decoded {
        fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<Bytes>>> {
            if self.buf.capacity() - self.buf.len() < CHUNK / 4 {
                self.buf.reserve(CHUNK);
            }
            match std::task::ready!(tokio_util::io::poll_read_buf(
                self.reader.as_mut(),
                cx,
                &mut self.buf
            )) {
                Ok(0) => Poll::Ready(Ok(None)),
                Ok(n) => {
                    self.decoded += n as u64;
                    let compressed = self.shared.compressed.load(Ordering::Relaxed);
                    if self.max_ratio > 0
                        && self.decoded > RATIO_FLOOR
                        && self.decoded / compressed.max(1) > self.max_ratio
                    {
                        return Poll::Ready(Err(Error::new(
                            ErrorKind::DecompressionBomb,
                            format!(
                                "the `{}` response body inflated {} bytes into {} (more than \
                                 max_decompression_ratio {}:1)",
                                self.names, compressed, self.decoded, self.max_ratio
                            ),
                        )));
                    }
                    Poll::Ready(Ok(Some(self.buf.split().freeze())))
                }
                // An empty body with a content-encoding header has nothing to decode.
                Err(_)
                    if self.shared.compressed.load(Ordering::Relaxed) == 0
                        && self.decoded == 0
                        && self
                            .shared
                            .error
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .is_none() =>
                {
                    Poll::Ready(Ok(None))
                }
                Err(e) => Poll::Ready(Err(self.failure(e))),
            }
        }

        fn take_trailers(&mut self) -> Option<HeaderMap> {
            self.shared
                .trailers
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take()
        }
    }
}
