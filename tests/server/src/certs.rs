//! Test PKI: a local CA, a server and a client certificate signed by it, an unrelated CA, and the
//! rustls server configurations built from them.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    date_time_ymd, BasicConstraints, CertificateParams, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
};
use rustls::server::{ServerSessionMemoryCache, WebPkiClientVerifier};
use rustls::{RootCertStore, ServerConfig};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// File names written into the certificate folder.
pub(crate) const CA_FILE: &str = "ca.crt";
pub(crate) const WRONG_CA_FILE: &str = "wrong-ca.crt";
pub(crate) const SERVER_CERT_FILE: &str = "server.crt";
pub(crate) const SERVER_KEY_FILE: &str = "server.key";
pub(crate) const CLIENT_CERT_FILE: &str = "client.crt";
pub(crate) const CLIENT_KEY_FILE: &str = "client.key";

/// ALPN protocol ids.
pub(crate) const ALPN_H2: &[u8] = b"h2";
pub(crate) const ALPN_HTTP1: &[u8] = b"http/1.1";
pub(crate) const ALPN_H3: &[u8] = b"h3";

/// How many TLS 1.3 session tickets an HTTP/3 server sends after each handshake.
const H3_TICKETS: usize = 4;

/// How many resumable sessions the HTTP/3 listeners remember (shared by both).
const H3_SESSION_CACHE: usize = 4096;

/// The rustls configurations of the two HTTP/3 listeners. They share one session store, so
/// that `reject_early` resumes sessions whose tickets `early` issued.
pub(crate) struct H3TlsConfigs {
    /// `h3`: issues tickets and accepts 0-RTT early data.
    pub(crate) early: Arc<ServerConfig>,
    /// `h3_reject_early`: resumes the same sessions but rejects early data.
    pub(crate) reject_early: Arc<ServerConfig>,
}

/// The generated material, in memory and on disk.
pub(crate) struct Pki {
    pub(crate) dir: PathBuf,
    ca_der: CertificateDer<'static>,
    server_der: CertificateDer<'static>,
    server_key_der: Vec<u8>,
}

fn to_io(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(format!("certificate generation: {e}"))
}

fn base_params(common_name: &str, sans: &[&str]) -> Result<CertificateParams, rcgen::Error> {
    let mut params =
        CertificateParams::new(sans.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>())?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn.push(DnType::OrganizationName, "Quiver test server");
    params.distinguished_name = dn;
    params.not_before = date_time_ymd(2020, 1, 1);
    params.not_after = date_time_ymd(2099, 12, 31);
    Ok(params)
}

fn ca_params(common_name: &str) -> Result<CertificateParams, rcgen::Error> {
    let mut params = base_params(common_name, &[])?;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    Ok(params)
}

fn leaf_params(
    common_name: &str,
    sans: &[&str],
    eku: ExtendedKeyUsagePurpose,
) -> Result<CertificateParams, rcgen::Error> {
    let mut params = base_params(common_name, sans)?;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![eku];
    params.use_authority_key_identifier_extension = true;
    Ok(params)
}

impl Pki {
    /// Generates every certificate (ECDSA P-256) and writes them as PEM into `dir`.
    pub(crate) fn generate(dir: &Path) -> io::Result<Pki> {
        std::fs::create_dir_all(dir)?;

        let ca_key = KeyPair::generate().map_err(to_io)?;
        let ca_cert_params = ca_params("Quiver Test CA").map_err(to_io)?;
        let ca_cert = ca_cert_params.self_signed(&ca_key).map_err(to_io)?;
        let ca = Issuer::new(ca_cert_params, ca_key);

        let server_key = KeyPair::generate().map_err(to_io)?;
        let server_cert = leaf_params(
            "localhost",
            // `quiver.test`: a name resolvers send to DNS (they answer `localhost` themselves),
            // for the `dns` listener's HTTPS records.
            &["localhost", "quiver.test", "127.0.0.1", "::1"],
            ExtendedKeyUsagePurpose::ServerAuth,
        )
        .and_then(|p| p.signed_by(&server_key, &ca))
        .map_err(to_io)?;

        let client_key = KeyPair::generate().map_err(to_io)?;
        let client_cert = leaf_params(
            "quiver-test-client",
            &[],
            ExtendedKeyUsagePurpose::ClientAuth,
        )
        .and_then(|p| p.signed_by(&client_key, &ca))
        .map_err(to_io)?;

        let wrong_key = KeyPair::generate().map_err(to_io)?;
        let wrong_ca = ca_params("Quiver Wrong Test CA")
            .and_then(|p| p.self_signed(&wrong_key))
            .map_err(to_io)?;

        let files: [(&str, String); 6] = [
            (CA_FILE, ca_cert.pem()),
            (WRONG_CA_FILE, wrong_ca.pem()),
            (SERVER_CERT_FILE, server_cert.pem()),
            (SERVER_KEY_FILE, server_key.serialize_pem()),
            (CLIENT_CERT_FILE, client_cert.pem()),
            (CLIENT_KEY_FILE, client_key.serialize_pem()),
        ];
        for (name, pem) in files {
            std::fs::write(dir.join(name), pem)?;
        }

        Ok(Pki {
            dir: dir.to_path_buf(),
            ca_der: ca_cert.der().clone(),
            server_der: server_cert.der().clone(),
            server_key_der: server_key.serialize_der(),
        })
    }

    fn provider() -> Arc<rustls::crypto::CryptoProvider> {
        Arc::new(rustls::crypto::ring::default_provider())
    }

    fn server_key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.server_key_der.clone()))
    }

    fn finish(mut config: ServerConfig, alpn: &[&[u8]]) -> Arc<ServerConfig> {
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Arc::new(config)
    }

    /// The configuration of the `https` listener (no client authentication; ALPN `h2` and
    /// `http/1.1`: a client offering `h2` gets it).
    pub(crate) fn https_config(&self) -> io::Result<Arc<ServerConfig>> {
        let config = ServerConfig::builder_with_provider(Self::provider())
            .with_safe_default_protocol_versions()
            .map_err(to_io)?
            .with_no_client_auth()
            .with_single_cert(vec![self.server_der.clone()], self.server_key())
            .map_err(to_io)?;
        Ok(Self::finish(config, &[ALPN_H2, ALPN_HTTP1]))
    }

    /// The configuration of the `mtls` listener: a client certificate chaining to the test CA
    /// is required.
    pub(crate) fn mtls_config(&self) -> io::Result<Arc<ServerConfig>> {
        let mut roots = RootCertStore::empty();
        roots.add(self.ca_der.clone()).map_err(to_io)?;
        let verifier =
            WebPkiClientVerifier::builder_with_provider(Arc::new(roots), Self::provider())
                .build()
                .map_err(to_io)?;
        let config = ServerConfig::builder_with_provider(Self::provider())
            .with_safe_default_protocol_versions()
            .map_err(to_io)?
            .with_client_cert_verifier(verifier)
            .with_single_cert(vec![self.server_der.clone()], self.server_key())
            .map_err(to_io)?;
        Ok(Self::finish(config, &[ALPN_HTTP1]))
    }

    /// The configuration of the `proxy_h3` listener: TLS 1.3 (QUIC), ALPN `h3`, no early data,
    /// its own session store.
    pub(crate) fn proxy_h3_config(&self) -> io::Result<Arc<ServerConfig>> {
        let config = ServerConfig::builder_with_provider(Self::provider())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(to_io)?
            .with_no_client_auth()
            .with_single_cert(vec![self.server_der.clone()], self.server_key())
            .map_err(to_io)?;
        Ok(Self::finish(config, &[ALPN_H3]))
    }

    /// The configurations of the HTTP/3 listeners: TLS 1.3 only (QUIC), ALPN `h3`, session
    /// tickets, and a session store shared by both. Resumption is stateful (the tickets are ids
    /// into that store, each good for one resumption): rustls accepts 0-RTT early data only for
    /// stateful resumption, never with a stateless `Ticketer`. QUIC allows `max_early_data_size`
    /// to be only 0 (no early data) or `u32::MAX`.
    pub(crate) fn h3_configs(&self) -> io::Result<H3TlsConfigs> {
        let sessions = ServerSessionMemoryCache::new(H3_SESSION_CACHE);
        let build = |max_early_data_size: u32| -> io::Result<Arc<ServerConfig>> {
            let mut config = ServerConfig::builder_with_provider(Self::provider())
                .with_protocol_versions(&[&rustls::version::TLS13])
                .map_err(to_io)?
                .with_no_client_auth()
                .with_single_cert(vec![self.server_der.clone()], self.server_key())
                .map_err(to_io)?;
            config.session_storage = sessions.clone();
            config.send_tls13_tickets = H3_TICKETS;
            config.max_early_data_size = max_early_data_size;
            Ok(Self::finish(config, &[ALPN_H3]))
        };
        Ok(H3TlsConfigs {
            early: build(u32::MAX)?,
            reject_early: build(0)?,
        })
    }
}
