//! Content codings (`/encoded`, `/corrupt`): gzip, deflate (zlib), raw deflate, brotli, zstd
//! and identity, alone or chained, compressing the pattern (or zero) body on the fly.

use std::future::Future;
use std::io::{self, Write};
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use flate2::Compression;
use http_body::{Body, Frame};
use tokio::time::Sleep;

use crate::body::{pattern_chunk, BoxError};

/// The most input bytes handed to an encoder at once (the step is fed in such pieces).
const PIECE: usize = 64 * 1024;

/// Brotli quality and window: quick enough for tens of MiB (quality 11 is far too slow).
const BROTLI_QUALITY: u32 = 5;
const BROTLI_LGWIN: u32 = 22;
const ZSTD_LEVEL: i32 = 3;

/// The size of the body `/corrupt` compresses.
pub(crate) const CORRUPT_BODY_LEN: usize = 65536;
/// How many junk bytes `/corrupt?kind=garbage` appends.
pub(crate) const GARBAGE_LEN: usize = 4096;

/// One content coding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Coding {
    /// gzip (RFC 1952).
    Gzip,
    /// HTTP's `deflate`: zlib-wrapped deflate (RFC 1950).
    Deflate,
    /// Raw deflate (RFC 1951), labelled `deflate` as some broken servers send it.
    DeflateRaw,
    /// Brotli (RFC 7932).
    Br,
    /// Zstandard (RFC 8878).
    Zstd,
    /// No coding.
    Identity,
}

impl Coding {
    /// The coding named `name` in a path (`deflate-raw` included).
    pub(crate) fn parse(name: &str) -> Option<Coding> {
        Some(match name {
            "gzip" => Coding::Gzip,
            "deflate" => Coding::Deflate,
            "deflate-raw" => Coding::DeflateRaw,
            "br" => Coding::Br,
            "zstd" => Coding::Zstd,
            "identity" => Coding::Identity,
            _ => return None,
        })
    }

    /// Its `content-encoding` label.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Coding::Gzip => "gzip",
            Coding::Deflate | Coding::DeflateRaw => "deflate",
            Coding::Br => "br",
            Coding::Zstd => "zstd",
            Coding::Identity => "identity",
        }
    }

    /// The bytes `/corrupt?kind=garbage` appends after a flushed valid prefix: what the decoder
    /// must read next is a block header, and these make an invalid one. Deflate (gzip, zlib):
    /// `0xFF` is BFINAL=1 with the reserved BTYPE 11. Brotli: `0xFE` is ISLAST=0, MNIBBLES=0
    /// (a metadata block) with its reserved bit set. Zstd: `0xFFFFFF` is a last block of the
    /// reserved block type 3.
    fn garbage_byte(self) -> u8 {
        match self {
            Coding::Br => 0xFE,
            _ => 0xFF,
        }
    }
}

/// Parses a comma-separated chain (`gzip,br`: gzip applied first); `None` when a coding is
/// unknown or the chain is empty.
pub(crate) fn parse_chain(spec: &str) -> Option<Vec<Coding>> {
    let chain: Option<Vec<Coding>> = spec.split(',').map(|c| Coding::parse(c.trim())).collect();
    chain.filter(|c| !c.is_empty())
}

/// The `content-encoding` value of a chain: the labels in the order applied, `, `-separated.
pub(crate) fn chain_label(chain: &[Coding]) -> String {
    chain
        .iter()
        .map(|c| c.label())
        .collect::<Vec<_>>()
        .join(", ")
}

/// One streaming encoder writing into its own buffer, which the caller empties.
enum Encoder {
    Gzip(flate2::write::GzEncoder<Vec<u8>>),
    Deflate(flate2::write::ZlibEncoder<Vec<u8>>),
    DeflateRaw(flate2::write::DeflateEncoder<Vec<u8>>),
    Br(Box<brotli::CompressorWriter<Vec<u8>>>),
    Zstd(zstd::stream::write::Encoder<'static, Vec<u8>>),
    Identity(Vec<u8>),
}

impl Encoder {
    fn new(coding: Coding) -> io::Result<Encoder> {
        let level = Compression::default();
        Ok(match coding {
            Coding::Gzip => Encoder::Gzip(flate2::write::GzEncoder::new(Vec::new(), level)),
            Coding::Deflate => Encoder::Deflate(flate2::write::ZlibEncoder::new(Vec::new(), level)),
            Coding::DeflateRaw => {
                Encoder::DeflateRaw(flate2::write::DeflateEncoder::new(Vec::new(), level))
            }
            Coding::Br => Encoder::Br(Box::new(brotli::CompressorWriter::new(
                Vec::new(),
                4096,
                BROTLI_QUALITY,
                BROTLI_LGWIN,
            ))),
            Coding::Zstd => {
                Encoder::Zstd(zstd::stream::write::Encoder::new(Vec::new(), ZSTD_LEVEL)?)
            }
            Coding::Identity => Encoder::Identity(Vec::new()),
        })
    }

    fn write(&mut self, data: &[u8]) -> io::Result<()> {
        match self {
            Encoder::Gzip(e) => e.write_all(data),
            Encoder::Deflate(e) => e.write_all(data),
            Encoder::DeflateRaw(e) => e.write_all(data),
            Encoder::Br(e) => e.write_all(data),
            Encoder::Zstd(e) => e.write_all(data),
            Encoder::Identity(out) => {
                out.extend_from_slice(data);
                Ok(())
            }
        }
    }

    /// Makes everything written so far decodable: a sync flush for deflate, a flush for
    /// brotli and zstd.
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Encoder::Gzip(e) => e.flush(),
            Encoder::Deflate(e) => e.flush(),
            Encoder::DeflateRaw(e) => e.flush(),
            Encoder::Br(e) => e.flush(),
            Encoder::Zstd(e) => e.flush(),
            Encoder::Identity(_) => Ok(()),
        }
    }

    /// Takes the output produced so far.
    fn take(&mut self) -> Vec<u8> {
        std::mem::take(match self {
            Encoder::Gzip(e) => e.get_mut(),
            Encoder::Deflate(e) => e.get_mut(),
            Encoder::DeflateRaw(e) => e.get_mut(),
            Encoder::Br(e) => e.get_mut(),
            Encoder::Zstd(e) => e.get_mut(),
            Encoder::Identity(out) => out,
        })
    }

    /// Ends the stream; returns the output not taken yet.
    fn finish(self) -> io::Result<Vec<u8>> {
        match self {
            Encoder::Gzip(e) => e.finish(),
            Encoder::Deflate(e) => e.finish(),
            Encoder::DeflateRaw(e) => e.finish(),
            Encoder::Br(e) => Ok(e.into_inner()),
            Encoder::Zstd(e) => e.finish(),
            Encoder::Identity(out) => Ok(out),
        }
    }
}

/// A chain of encoders, each feeding the next.
pub(crate) struct Chain {
    stages: Vec<Encoder>,
}

impl Chain {
    pub(crate) fn new(codings: &[Coding]) -> io::Result<Chain> {
        Ok(Chain {
            stages: codings
                .iter()
                .map(|c| Encoder::new(*c))
                .collect::<io::Result<_>>()?,
        })
    }

    /// Feeds `input` through every stage (flushing each when `flush`); returns what came out of
    /// the last one.
    pub(crate) fn push(&mut self, input: &[u8], flush: bool) -> io::Result<Vec<u8>> {
        let mut carry: Option<Vec<u8>> = None;
        for stage in &mut self.stages {
            let data = carry.as_deref().unwrap_or(input);
            stage.write(data)?;
            if flush {
                stage.flush()?;
            }
            carry = Some(stage.take());
        }
        Ok(carry.unwrap_or_else(|| input.to_vec()))
    }

    /// Ends every stage in turn; returns the last output.
    pub(crate) fn finish(self) -> io::Result<Vec<u8>> {
        let mut carry: Option<Vec<u8>> = None;
        for mut stage in self.stages {
            if let Some(data) = carry.take() {
                stage.write(&data)?;
            }
            carry = Some(stage.finish()?);
        }
        Ok(carry.unwrap_or_default())
    }
}

/// What the uncompressed body is made of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fill {
    /// Byte `i` is `b'a' + i % 26`, as `/bytes`.
    Pattern,
    /// Zero bytes (a decompression bomb).
    Zero,
}

fn zeros() -> &'static Bytes {
    static ZEROS: OnceLock<Bytes> = OnceLock::new();
    ZEROS.get_or_init(|| Bytes::from(vec![0u8; PIECE]))
}

/// `len` (at most [`PIECE`]) bytes of the body at `offset`.
fn piece(fill: Fill, offset: u64, len: usize) -> Bytes {
    match fill {
        Fill::Pattern => pattern_chunk(offset, len),
        Fill::Zero => zeros().slice(..len),
    }
}

/// Feeds body bytes `offset..offset + len` to `chain` in pieces, flushing after the last one
/// when `flush`; returns the output.
fn feed(chain: &mut Chain, fill: Fill, offset: u64, len: u64, flush: bool) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut done = 0u64;
    loop {
        let step = (len - done).min(PIECE as u64) as usize;
        let last = done + step as u64 == len;
        out.extend(chain.push(&piece(fill, offset + done, step), flush && last)?);
        done += step as u64;
        if last {
            return Ok(out);
        }
    }
}

/// The whole body of `n` bytes compressed with `codings`.
pub(crate) fn compress_all(codings: &[Coding], fill: Fill, n: u64) -> io::Result<Vec<u8>> {
    let mut chain = Chain::new(codings)?;
    let mut out = feed(&mut chain, fill, 0, n, false)?;
    out.extend(chain.finish()?);
    Ok(out)
}

/// `/corrupt?kind=garbage`: the first half of the [`CORRUPT_BODY_LEN`]-byte pattern body,
/// compressed with `coding` and flushed (a valid prefix ending where the decoder expects a new
/// block), then [`GARBAGE_LEN`] bytes no decoder of that coding accepts there.
pub(crate) fn garbage(coding: Coding) -> io::Result<Vec<u8>> {
    let mut chain = Chain::new(&[coding])?;
    let mut out = feed(
        &mut chain,
        Fill::Pattern,
        0,
        CORRUPT_BODY_LEN as u64 / 2,
        true,
    )?;
    out.extend(std::iter::repeat_n(coding.garbage_byte(), GARBAGE_LEN));
    Ok(out)
}

/// `/corrupt?kind=truncated`: the complete compressed [`CORRUPT_BODY_LEN`]-byte pattern body,
/// cut in half.
pub(crate) fn truncated(coding: Coding) -> io::Result<Vec<u8>> {
    let mut full = compress_all(&[coding], Fill::Pattern, CORRUPT_BODY_LEN as u64)?;
    full.truncate(full.len() / 2);
    Ok(full)
}

/// A body of `n` uncompressed bytes compressed on the fly as the transport polls it:
/// `chunk_size` bytes per step, each step flushed so it yields output, `delay` between steps.
/// Memory stays bounded whatever `n`; a client that stops reading stops the compression.
pub(crate) struct EncodedBody {
    chain: Option<Chain>,
    fill: Fill,
    offset: u64,
    remaining: u64,
    chunk_size: u64,
    delay: Option<Duration>,
    sleep: Option<Pin<Box<Sleep>>>,
}

impl EncodedBody {
    pub(crate) fn new(
        codings: &[Coding],
        fill: Fill,
        n: u64,
        chunk_size: u64,
        delay: Option<Duration>,
    ) -> io::Result<EncodedBody> {
        Ok(EncodedBody {
            chain: Some(Chain::new(codings)?),
            fill,
            offset: 0,
            remaining: n,
            chunk_size: chunk_size.max(1),
            delay: delay.filter(|d| !d.is_zero()),
            sleep: None,
        })
    }
}

impl Body for EncodedBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        loop {
            if let Some(sleep) = this.sleep.as_mut() {
                if sleep.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                this.sleep = None;
            }
            if this.remaining == 0 {
                let Some(chain) = this.chain.take() else {
                    return Poll::Ready(None);
                };
                return match chain.finish() {
                    Ok(out) if out.is_empty() => Poll::Ready(None),
                    Ok(out) => Poll::Ready(Some(Ok(Frame::data(out.into())))),
                    Err(e) => Poll::Ready(Some(Err(e.into()))),
                };
            }
            let Some(chain) = this.chain.as_mut() else {
                return Poll::Ready(None);
            };
            let len = this.remaining.min(this.chunk_size);
            let out = match feed(chain, this.fill, this.offset, len, true) {
                Ok(out) => out,
                Err(e) => {
                    this.chain = None;
                    return Poll::Ready(Some(Err(e.into())));
                }
            };
            this.offset += len;
            this.remaining -= len;
            if this.remaining > 0 {
                if let Some(delay) = this.delay {
                    this.sleep = Some(Box::pin(tokio::time::sleep(delay)));
                }
            }
            if !out.is_empty() {
                return Poll::Ready(Some(Ok(Frame::data(out.into()))));
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.chain.is_none()
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use http_body_util::BodyExt;

    use super::*;

    /// Decodes `data` for one coding, strictly: an incomplete or corrupt stream is an error.
    fn decode_one(coding: Coding, data: &[u8]) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        match coding {
            Coding::Gzip => {
                flate2::read::GzDecoder::new(data).read_to_end(&mut out)?;
            }
            Coding::Deflate => {
                flate2::read::ZlibDecoder::new(data).read_to_end(&mut out)?;
            }
            Coding::DeflateRaw => {
                flate2::read::DeflateDecoder::new(data).read_to_end(&mut out)?;
            }
            Coding::Br => {
                brotli::Decompressor::new(data, 4096).read_to_end(&mut out)?;
            }
            Coding::Zstd => {
                zstd::stream::read::Decoder::new(data)?.read_to_end(&mut out)?;
            }
            Coding::Identity => out.extend_from_slice(data),
        }
        Ok(out)
    }

    /// Decodes a chain, last coding first.
    fn decode(chain: &[Coding], data: &[u8]) -> io::Result<Vec<u8>> {
        let mut data = data.to_vec();
        for coding in chain.iter().rev() {
            data = decode_one(*coding, &data)?;
        }
        Ok(data)
    }

    const ALL: [Coding; 6] = [
        Coding::Gzip,
        Coding::Deflate,
        Coding::DeflateRaw,
        Coding::Br,
        Coding::Zstd,
        Coding::Identity,
    ];

    #[test]
    fn chains_parse_and_label() {
        assert_eq!(parse_chain("gzip"), Some(vec![Coding::Gzip]));
        assert_eq!(parse_chain("gzip,br"), Some(vec![Coding::Gzip, Coding::Br]));
        assert_eq!(chain_label(&parse_chain("gzip, br").unwrap()), "gzip, br");
        assert_eq!(chain_label(&parse_chain("deflate-raw").unwrap()), "deflate");
        assert_eq!(parse_chain("lzma"), None);
        assert_eq!(parse_chain(""), None);
        assert_eq!(parse_chain("gzip,"), None);
    }

    #[test]
    fn whole_bodies_round_trip() {
        for coding in ALL {
            for n in [0u64, 1, 100_000] {
                let data = compress_all(&[coding], Fill::Pattern, n).unwrap();
                let plain = decode(&[coding], &data).unwrap();
                assert_eq!(plain, crate::pattern(n as usize), "{coding:?} {n}");
            }
        }
        let chain = [Coding::Gzip, Coding::Br, Coding::Zstd];
        let data = compress_all(&chain, Fill::Zero, 1 << 20).unwrap();
        assert!(data.len() < 10_000, "{}", data.len());
        assert_eq!(decode(&chain, &data).unwrap(), vec![0u8; 1 << 20]);
    }

    #[tokio::test]
    async fn streamed_bodies_round_trip_and_flush_every_step() {
        for coding in ALL {
            let body =
                EncodedBody::new(&[coding, Coding::Gzip], Fill::Pattern, 100_000, 1000, None)
                    .unwrap();
            let mut body = std::pin::pin!(body);
            let mut data = Vec::new();
            let mut frames = 0;
            while let Some(frame) = body.frame().await {
                frames += 1;
                data.extend_from_slice(&frame.unwrap().into_data().unwrap());
            }
            // One frame per step, plus the end of the stream.
            assert!(frames >= 100, "{coding:?}: {frames}");
            let plain = decode(&[coding, Coding::Gzip], &data).unwrap();
            assert_eq!(plain, crate::pattern(100_000), "{coding:?}");
        }
    }

    #[test]
    fn corrupt_bodies_fail_to_decode() {
        for coding in [Coding::Gzip, Coding::Deflate, Coding::Br, Coding::Zstd] {
            let data = garbage(coding).unwrap();
            let err = decode_one(coding, &data);
            assert!(err.is_err(), "{coding:?} garbage decoded");
            // The prefix alone is valid: it decodes to the first half (or fails only for
            // lack of an end).
            let prefix = &data[..data.len() - GARBAGE_LEN];
            let mut decoder_out = Vec::new();
            match coding {
                Coding::Gzip => {
                    let _ = flate2::read::GzDecoder::new(prefix).read_to_end(&mut decoder_out);
                }
                Coding::Deflate => {
                    let _ = flate2::read::ZlibDecoder::new(prefix).read_to_end(&mut decoder_out);
                }
                Coding::Br => {
                    let _ = brotli::Decompressor::new(prefix, 4096).read_to_end(&mut decoder_out);
                }
                _ => {
                    let _ = zstd::stream::read::Decoder::new(prefix)
                        .unwrap()
                        .read_to_end(&mut decoder_out);
                }
            }
            assert_eq!(
                decoder_out,
                crate::pattern(CORRUPT_BODY_LEN / 2),
                "{coding:?} prefix"
            );

            let data = truncated(coding).unwrap();
            let full = compress_all(&[coding], Fill::Pattern, CORRUPT_BODY_LEN as u64).unwrap();
            assert_eq!(data.len(), full.len() / 2);
            assert!(
                decode_one(coding, &data).is_err(),
                "{coding:?} truncated decoded"
            );
        }
    }
}
