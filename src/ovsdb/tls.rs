//! TLS for `ssl:` and `pssl:` remotes, with rustls (ring provider), set up the way Open
//! vSwitch sets up its own SSL streams: one private key, one certificate and one CA
//! certificate (`--private-key`, `--certificate`, `--ca-cert`), both ends presenting a
//! certificate and both ends checking the other's against the CA.
//!
//! Peer names are not checked. Certificates made by `ovs-pki` carry no address or host name a
//! controller could match (their subject is `CN=<name> id:<uuid>` with the same text as a DNS
//! subject alternative name), and Open vSwitch 3.1's `lib/stream-ssl.c` does not check them
//! either: it asks OpenSSL for `SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT`, which
//! verifies the chain to the CA, sets no expected host, and only records the peer's common
//! name. So with these files a periscope client trusts any server whose certificate the CA
//! signed, exactly as `ovs-vsctl --db=ssl:...` does; keep the CA to the hosts it should vouch
//! for. Revocation lists are not consulted.

use std::fmt;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio_rustls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use tokio_rustls::rustls::client::verify_server_cert_signed_by_trust_anchor;
use tokio_rustls::rustls::crypto::{
    verify_tls12_signature, verify_tls13_signature, WebPkiSupportedAlgorithms,
};
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use tokio_rustls::rustls::server::{ParsedCertificate, WebPkiClientVerifier};
use tokio_rustls::rustls::{
    self, CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig,
    SignatureScheme,
};
use tokio_rustls::{TlsAcceptor, TlsConnector};

/// The three PEM files of one OVS PKI identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// Our private key (`--private-key`).
    pub private_key: PathBuf,
    /// Our certificate, possibly followed by its chain (`--certificate`).
    pub certificate: PathBuf,
    /// The CA certificate(s) that peers' certificates must chain to (`--ca-cert`).
    pub ca_cert: PathBuf,
}

/// Why a TLS configuration could not be built; every variant names the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// The file could not be read, or is not PEM.
    #[error("{what} {path:?}: {source}")]
    Read {
        /// Which file (`private key`, `certificate`, `CA certificate`).
        what: &'static str,
        /// Its path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file holds no PEM block of the expected kind.
    #[error("{what} {path:?}: no {expected} PEM block in the file")]
    Empty {
        /// Which file.
        what: &'static str,
        /// Its path.
        path: PathBuf,
        /// The PEM block looked for.
        expected: &'static str,
    },
    /// rustls refused what the file holds.
    #[error("{what} {path:?}: {source}")]
    Rejected {
        /// Which file.
        what: &'static str,
        /// Its path.
        path: PathBuf,
        /// Why.
        source: rustls::Error,
    },
    /// The CA certificates could not make a client verifier.
    #[error("CA certificate {path:?}: {reason}")]
    Verifier {
        /// The CA file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

/// Client and server TLS configurations built from one [`TlsFiles`], cheap to clone.
#[derive(Clone)]
pub struct TlsConfig {
    client: Arc<ClientConfig>,
    server: Arc<ServerConfig>,
    files: TlsFiles,
}

impl fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConfig").field("files", &self.files).finish_non_exhaustive()
    }
}

fn read(what: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read { what, path: path.into(), source })
}

fn certs(what: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(what, path)?;
    let certs = rustls_pemfile::certs(&mut BufReader::new(pem.as_slice()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| TlsError::Read { what, path: path.into(), source })?;
    if certs.is_empty() {
        return Err(TlsError::Empty { what, path: path.into(), expected: "CERTIFICATE" });
    }
    Ok(certs)
}

fn key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let what = "private key";
    let pem = read(what, path)?;
    rustls_pemfile::private_key(&mut BufReader::new(pem.as_slice()))
        .map_err(|source| TlsError::Read { what, path: path.into(), source })?
        .ok_or(TlsError::Empty { what, path: path.into(), expected: "PRIVATE KEY" })
}

impl TlsConfig {
    /// Reads the three files and builds both configurations (TLS 1.2 and 1.3; ovsdb-server
    /// 3.1 supports TLSv1 to TLSv1.2 only (ovsdb-server(1) `--ssl-protocols`), so 1.2 is what
    /// it negotiates).
    pub fn load(files: &TlsFiles) -> Result<TlsConfig, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let chain = certs("certificate", &files.certificate)?;
        let key = key(&files.private_key)?;
        let mut roots = RootCertStore::empty();
        for ca in certs("CA certificate", &files.ca_cert)? {
            roots.add(ca).map_err(|source| TlsError::Rejected {
                what: "CA certificate",
                path: files.ca_cert.clone(),
                source,
            })?;
        }
        let roots = Arc::new(roots);
        let rejected = |source| TlsError::Rejected {
            what: "certificate",
            path: files.certificate.clone(),
            source,
        };

        let verifier = CaChainVerifier {
            roots: roots.clone(),
            algs: provider.signature_verification_algorithms,
        };
        let client = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(rejected)?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_client_auth_cert(chain.clone(), key.clone_key())
            .map_err(rejected)?;

        let client_verifier =
            WebPkiClientVerifier::builder_with_provider(roots, provider.clone()).build().map_err(
                |e| TlsError::Verifier { path: files.ca_cert.clone(), reason: e.to_string() },
            )?;
        let server = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(rejected)?
            .with_client_cert_verifier(client_verifier)
            .with_single_cert(chain, key)
            .map_err(rejected)?;
        Ok(TlsConfig { client: Arc::new(client), server: Arc::new(server), files: files.clone() })
    }

    /// The files this configuration was built from.
    pub fn files(&self) -> &TlsFiles {
        &self.files
    }

    /// Connects TLS clients (`ssl:` remotes).
    pub fn connector(&self) -> TlsConnector {
        TlsConnector::from(self.client.clone())
    }

    /// Accepts TLS clients (`pssl:` remotes); a client without a certificate signed by the CA
    /// is refused.
    pub fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(self.server.clone())
    }
}

/// Says what a failed handshake means for the user: a certificate the CA did not sign gets a
/// hint naming the flag to check.
pub fn handshake_error(remote: &str, e: std::io::Error) -> std::io::Error {
    let hint = match e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
        Some(rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer)) => {
            " (the peer's certificate is not signed by the CA of --ovsdb-ca-cert)"
        }
        Some(rustls::Error::InvalidCertificate(CertificateError::BadSignature)) => {
            // A CA of the same name as ours signed it (ovs-pki names its CAs by the second
            // they were made in), so the name matched and the signature did not.
            " (the peer's certificate is not signed by the CA of --ovsdb-ca-cert: its issuer has the CA's name but not its key)"
        }
        _ => "",
    };
    std::io::Error::new(e.kind(), format!("TLS handshake with {remote} failed: {e}{hint}"))
}

/// Checks a server's certificate chain against the CA and nothing else (see the module
/// documentation for why the name is not checked).
#[derive(Debug)]
struct CaChainVerifier {
    roots: Arc<RootCertStore>,
    algs: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for CaChainVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let cert = ParsedCertificate::try_from(end_entity)?;
        verify_server_cert_signed_by_trust_anchor(
            &cert,
            &self.roots,
            intermediates,
            now,
            self.algs.all,
        )?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.algs)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algs)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algs.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_files_are_named() {
        let files = TlsFiles {
            private_key: "/nonexistent/periscope-key.pem".into(),
            certificate: "/nonexistent/periscope-cert.pem".into(),
            ca_cert: "/nonexistent/periscope-ca.pem".into(),
        };
        let e = TlsConfig::load(&files).unwrap_err().to_string();
        assert!(e.contains("certificate \"/nonexistent/periscope-cert.pem\""), "{e}");
    }

    #[test]
    fn a_file_without_pem_blocks_is_refused_naming_the_block() {
        let dir = std::env::temp_dir().join(format!("periscope-tls-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "not pem\n").expect("write");
        let e = certs("certificate", &empty).unwrap_err().to_string();
        let k = key(&empty).unwrap_err().to_string();
        let _ = std::fs::remove_dir_all(&dir);
        assert!(e.contains("no CERTIFICATE PEM block"), "{e}");
        assert!(k.contains("no PRIVATE KEY PEM block"), "{k}");
    }
}
