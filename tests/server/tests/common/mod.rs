//! Helpers shared by the integration tests: raw sockets, a tiny hyper client, TLS connectors.

#![allow(dead_code)]

use std::convert::Infallible;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
pub use quiver_testserver::pattern;
use quiver_testserver::{Options, TestServer};
use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

/// Generous bound on any single network step of a test.
pub const STEP: Duration = Duration::from_secs(10);

pub async fn server() -> TestServer {
    TestServer::start(Options::default())
        .await
        .expect("server starts")
}

pub fn v4(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, port))
}

pub fn v6(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv6Addr::LOCALHOST, port))
}

pub async fn connect(addr: SocketAddr) -> TcpStream {
    tokio::time::timeout(STEP, TcpStream::connect(addr))
        .await
        .expect("connect in time")
        .expect("connect")
}

/// Reads until EOF (or a reset, which ends the read as well); returns what came and whether it
/// ended in an error.
pub async fn read_to_end<S: AsyncRead + Unpin>(stream: &mut S) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    let mut buf = [0u8; 16384];
    loop {
        match tokio::time::timeout(STEP, stream.read(&mut buf))
            .await
            .expect("read in time")
        {
            Ok(0) => return (out, false),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(_) => return (out, true),
        }
    }
}

/// Writes `request` on a fresh connection and reads everything until the server closes.
pub async fn raw_exchange(addr: SocketAddr, request: &[u8]) -> Vec<u8> {
    let mut stream = connect(addr).await;
    stream.write_all(request).await.expect("write");
    read_to_end(&mut stream).await.0
}

/// One HTTP/1.1 response read off a raw stream: head text and body (content-length bodies only).
pub struct RawResponse {
    pub head: String,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.split("\r\n").skip(1).find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

/// Reads one response with a `content-length` body from `stream`, leaving the connection open.
pub async fn read_response<S: AsyncRead + Unpin>(stream: &mut S) -> RawResponse {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    let head_end = loop {
        if let Some(pos) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break pos + 4;
        }
        let n = tokio::time::timeout(STEP, stream.read(&mut buf))
            .await
            .expect("read in time")
            .expect("read");
        assert!(
            n > 0,
            "EOF inside a response head: {:?}",
            String::from_utf8_lossy(&data)
        );
        data.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8(data[..head_end].to_vec()).expect("utf-8 head");
    let mut response = RawResponse {
        head,
        body: data[head_end..].to_vec(),
    };
    let len: usize = response
        .header("content-length")
        .expect("content-length")
        .parse()
        .expect("numeric content-length");
    while response.body.len() < len {
        let n = tokio::time::timeout(STEP, stream.read(&mut buf))
            .await
            .expect("read in time")
            .expect("read");
        assert!(n > 0, "EOF inside a response body");
        response.body.extend_from_slice(&buf[..n]);
    }
    assert_eq!(response.body.len(), len, "no bytes beyond the body");
    response
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A TLS connector trusting `ca`, presenting `client` (cert, key) if given, offering ALPN
/// `http/1.1` only.
pub fn tls_connector(ca: &Path, client: Option<(&Path, &Path)>) -> TlsConnector {
    tls_connector_alpn(ca, client, &[b"http/1.1"])
}

/// A TLS connector trusting `ca`, presenting `client` (cert, key) if given, offering `alpn`.
pub fn tls_connector_alpn(
    ca: &Path,
    client: Option<(&Path, &Path)>,
    alpn: &[&[u8]],
) -> TlsConnector {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).expect("ca file") {
        roots.add(cert.expect("ca pem")).expect("ca cert");
    }
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots);
    let mut config = match client {
        Some((cert, key)) => {
            let chain = CertificateDer::pem_file_iter(cert)
                .expect("client cert")
                .collect::<Result<Vec<_>, _>>()
                .expect("client cert pem");
            let key = PrivateKeyDer::from_pem_file(key).expect("client key");
            builder
                .with_client_auth_cert(chain, key)
                .expect("client auth")
        }
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    TlsConnector::from(Arc::new(config))
}

pub async fn tls_connect(
    connector: &TlsConnector,
    addr: SocketAddr,
    name: &str,
) -> std::io::Result<TlsStream<TcpStream>> {
    let tcp = connect(addr).await;
    let name = ServerName::try_from(name.to_owned()).expect("server name");
    tokio::time::timeout(STEP, connector.connect(name, tcp))
        .await
        .expect("handshake in time")
}

/// An HTTP/1.1 client connection over `io`.
pub async fn client<I>(io: I) -> SendRequest<Full<Bytes>>
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (sender, conn) = http1::handshake(TokioIo::new(io)).await.expect("handshake");
    tokio::spawn(conn);
    sender
}

pub fn get(path: &str) -> Request<Full<Bytes>> {
    Request::get(path)
        .header("host", "localhost")
        .body(Full::new(Bytes::new()))
        .expect("request")
}

/// Sends `req` and collects the whole response.
pub async fn send(
    sender: &mut SendRequest<Full<Bytes>>,
    req: Request<Full<Bytes>>,
) -> Result<Response<Bytes>, hyper::Error> {
    let resp = tokio::time::timeout(STEP, sender.send_request(req))
        .await
        .expect("response in time")?;
    let (parts, body) = resp.into_parts();
    let body = tokio::time::timeout(STEP, body.collect())
        .await
        .expect("body in time")?
        .to_bytes();
    Ok(Response::from_parts(parts, body))
}

/// `GET path` on a fresh plain connection to `addr`.
pub async fn get_at(addr: SocketAddr, path: &str) -> Response<Bytes> {
    let mut sender = client(connect(addr).await).await;
    send(&mut sender, get(path)).await.expect("response")
}

pub fn header<'r>(resp: &'r Response<Bytes>, name: &str) -> &'r str {
    resp.headers()
        .get(name)
        .unwrap_or_else(|| panic!("header {name}"))
        .to_str()
        .expect("ascii header")
}

pub fn infallible<T>(t: T) -> Result<T, Infallible> {
    Ok(t)
}
