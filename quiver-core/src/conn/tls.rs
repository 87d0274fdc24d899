//! rustls client configuration: trust anchors, custom CA, client certificates, ALPN.
//!
//! One crypto provider (ring) is used everywhere, always passed explicitly, so the
//! process-wide default provider of the host application is never consulted or installed.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};

use super::{io_error, Connected, Stream};
use crate::config::{PoolOptions, TlsRoots};
use crate::error::{Error, ErrorKind, Result};
use crate::origin::Origin;

/// ALPN protocol id for HTTP/1.1.
pub(crate) const ALPN_HTTP1: &[u8] = b"http/1.1";

/// The crypto provider every quiver TLS config uses.
pub(crate) fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| Arc::new(rustls::crypto::ring::default_provider()))
        .clone()
}

fn webpki_roots() -> Arc<RootCertStore> {
    static ROOTS: OnceLock<Arc<RootCertStore>> = OnceLock::new();
    ROOTS
        .get_or_init(|| {
            Arc::new(RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            })
        })
        .clone()
}

fn system_roots() -> Result<Arc<RootCertStore>> {
    static ROOTS: OnceLock<Arc<RootCertStore>> = OnceLock::new();
    if let Some(r) = ROOTS.get() {
        return Ok(r.clone());
    }
    let loaded = rustls_native_certs::load_native_certs();
    let mut store = RootCertStore::empty();
    let (added, _ignored) = store.add_parsable_certificates(loaded.certs);
    if added == 0 {
        return Err(Error::invalid_config(
            "option `tls_roots` is `system`, but the system trust store has no usable certificate",
        ));
    }
    Ok(ROOTS.get_or_init(|| Arc::new(store)).clone())
}

fn load_ca_file(path: &Path) -> Result<Arc<RootCertStore>> {
    let bad =
        |why: String| Error::invalid_config(format!("option `ca_file`: {}: {why}", path.display()));
    let mut store = RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(path).map_err(|e| bad(e.to_string()))?;
    for cert in certs {
        let cert = cert.map_err(|e| bad(e.to_string()))?;
        store.add(cert).map_err(|e| bad(e.to_string()))?;
    }
    if store.is_empty() {
        return Err(bad("no certificate found".into()));
    }
    Ok(Arc::new(store))
}

fn load_client_identity(
    cert: &Path,
    key: &Path,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)> {
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<std::result::Result<Vec<_>, _>>())
        .map_err(|e| {
            Error::invalid_config(format!("option `client_cert`: {}: {e}", cert.display()))
        })?;
    if chain.is_empty() {
        return Err(Error::invalid_config(format!(
            "option `client_cert`: {}: no certificate found",
            cert.display()
        )));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| {
        Error::invalid_config(format!("option `client_key`: {}: {e}", key.display()))
    })?;
    Ok((chain, key))
}

/// The TLS configs of one pool rule, one per ALPN offer.
#[derive(Clone)]
pub(crate) struct RuleTls {
    /// ALPN `http/1.1`.
    pub http1: Arc<ClientConfig>,
    /// ALPN `h2`.
    pub http2: Arc<ClientConfig>,
    /// ALPN `h2`, `http/1.1`: the server's choice decides an `auto` pool.
    pub auto: Arc<ClientConfig>,
    /// ALPN `h3`, early data enabled when the rule asks for 0-RTT.
    #[cfg(feature = "http3")]
    pub http3: Arc<ClientConfig>,
}

impl RuleTls {
    /// Builds (and so validates: CA file, client certificate) the configs for `options`.
    pub(crate) fn new(options: &PoolOptions) -> Result<RuleTls> {
        let base = client_config(options)?;
        let with = |alpn: &[&[u8]]| {
            let mut c = base.clone();
            c.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
            Arc::new(c)
        };
        Ok(RuleTls {
            http1: with(&[ALPN_HTTP1]),
            http2: with(&[ALPN_H2]),
            auto: with(&[ALPN_H2, ALPN_HTTP1]),
            #[cfg(feature = "http3")]
            http3: {
                let mut http3 = (*with(&[ALPN_H3])).clone();
                http3.enable_early_data = options.early_data;
                Arc::new(http3)
            },
        })
    }
}

/// ALPN protocol id for HTTP/2.
pub(crate) const ALPN_H2: &[u8] = b"h2";

/// ALPN protocol id for HTTP/3.
#[cfg_attr(not(feature = "http3"), allow(dead_code))]
pub(crate) const ALPN_H3: &[u8] = b"h3";

/// Builds the rustls client config (without ALPN) for a pool with these options.
fn client_config(options: &PoolOptions) -> Result<ClientConfig> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::internal(format!("TLS protocol versions: {e}")))?;
    let builder = if options.danger_accept_invalid_certs {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider())))
    } else {
        let roots = match (&options.ca_file, options.tls_roots) {
            (Some(path), _) => load_ca_file(path)?,
            (None, TlsRoots::Webpki) => webpki_roots(),
            (None, TlsRoots::System) => system_roots()?,
        };
        builder.with_root_certificates(roots)
    };
    let config = match (&options.client_cert, &options.client_key) {
        (Some(cert), Some(key)) => {
            let (chain, key) = load_client_identity(cert, key)?;
            builder.with_client_auth_cert(chain, key).map_err(|e| {
                Error::invalid_config(format!(
                    "option `client_key`: does not fit the certificate: {e}"
                ))
            })?
        }
        _ => builder.with_no_client_auth(),
    };
    Ok(config)
}

/// Runs the TLS handshake with `origin` over `raw` and reports the protocol ALPN chose.
pub(crate) async fn handshake(
    raw: Stream,
    origin: &Origin,
    config: &Arc<ClientConfig>,
) -> Result<Connected> {
    let name = server_name(origin.host())?;
    let connector = tokio_rustls::TlsConnector::from(config.clone());
    let tls = connector
        .connect(name, raw)
        .await
        .map_err(|e| handshake_error(e, origin, config))?;
    let session = tls.get_ref().1;
    let alpn = session.alpn_protocol().map(|p| p.to_vec());
    let info = super::ConnectionInfo {
        alpn: alpn
            .as_deref()
            .map(|p| String::from_utf8_lossy(p).into_owned()),
        resumed: session.handshake_kind() == Some(rustls::HandshakeKind::Resumed),
        ..super::ConnectionInfo::default()
    };
    Ok(Connected {
        stream: Stream::Tls(Box::new(tls)),
        alpn,
        info,
    })
}

fn handshake_error(e: std::io::Error, origin: &Origin, config: &ClientConfig) -> Error {
    let alert = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>());
    if let Some(rustls::Error::AlertReceived(rustls::AlertDescription::NoApplicationProtocol)) =
        alert
    {
        let offered: Vec<String> = config
            .alpn_protocols
            .iter()
            .map(|p| String::from_utf8_lossy(p).into_owned())
            .collect();
        return Error::new(
            ErrorKind::Tls,
            format!(
                "{origin} accepts none of the protocols offered by ALPN ({}); check the pool's `protocol` option",
                offered.join(", ")
            ),
        );
    }
    io_error(
        &e,
        &format!("TLS handshake with {}", origin.host().to_authority_string()),
    )
}

/// Maps a TLS failure seen during the handshake or on the wire to a quiver error.
pub(crate) fn tls_error(err: &rustls::Error, host: &str) -> Error {
    let what = match err {
        rustls::Error::InvalidCertificate(_) => "certificate verification failed",
        rustls::Error::AlertReceived(_) => "the server sent a TLS alert",
        _ => "TLS handshake failed",
    };
    Error::with_source(
        ErrorKind::Tls,
        format!("{what} ({host}): {err}"),
        err.clone(),
    )
}

/// The server name to verify and send as SNI (none is sent for IP addresses).
pub(crate) fn server_name(host: &crate::origin::Host) -> Result<ServerName<'static>> {
    match host {
        crate::origin::Host::Ip(ip) => Ok(ServerName::IpAddress((*ip).into())),
        crate::origin::Host::Name(name) => ServerName::try_from(name.clone()).map_err(|e| {
            Error::with_source(
                ErrorKind::InvalidUrl,
                format!("`{name}` is not a valid TLS server name"),
                e,
            )
        }),
    }
}

/// The verifier behind `danger_accept_invalid_certs`: checks handshake signatures, trusts any
/// certificate.
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
