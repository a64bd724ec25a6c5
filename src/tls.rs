//! TLS for every management connection (OpenFlow `ssl:`/`pssl:`, OVSDB `ssl:`/`pssl:`, the
//! API over HTTPS), with rustls (ring provider), set up the way Open vSwitch sets up its own
//! SSL streams: one private key, one certificate and one CA certificate (`--private-key`,
//! `--certificate`, `--ca-cert`), both ends presenting a certificate and both ends checking
//! the other's against the CA. The API is the exception: its callers prove who they are with
//! bearer tokens, so it asks for no client certificate (its clients check the server's).
//!
//! Peer names are not checked. Certificates made by `ovs-pki` carry no address or host name a
//! controller could match (their subject is `CN=<name> id:<uuid>` with the same text as a DNS
//! subject alternative name), and Open vSwitch 3.1's `lib/stream-ssl.c` does not check them
//! either: it asks OpenSSL for `SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT`, which
//! verifies the chain to the CA, sets no expected host, and only records the peer's common
//! name. So with these files a periscope client trusts any server whose certificate the CA
//! signed, exactly as `ovs-vsctl --db=ssl:...` does; keep the CA to the hosts it should vouch
//! for. Revocation lists are not consulted.
//!
//! The files are reloaded without a restart: before each new connection (accepted or made)
//! [`TlsConfig`] compares the files' size, modification time and inode with what it loaded,
//! and when any changed it loads them again. New connections use the new files; established
//! ones keep the session they have. Files that fail to load (half written, a key that does not
//! match the certificate) are logged and the previous configuration stays in use.

use std::fmt;
use std::io::BufReader;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use slog::{info, warn, Logger};

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
    self, AlertDescription, CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore,
    ServerConfig, SignatureScheme,
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

/// The client and server TLS configurations built from one [`TlsFiles`], reloaded when the
/// files change; cheap to clone (clones share the loaded state).
#[derive(Clone)]
pub struct TlsConfig {
    files: TlsFiles,
    loaded: Arc<Mutex<Loaded>>,
    log: Logger,
}

impl fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConfig").field("files", &self.files).finish_non_exhaustive()
    }
}

/// What identifies one version of a file on disk: a rewrite or a rename over it changes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileStamp {
    len: u64,
    modified: Option<SystemTime>,
    inode: u64,
}

/// The three files' stamps (`None` for a file that cannot be read now).
type Stamps = [Option<FileStamp>; 3];

fn stamps(files: &TlsFiles) -> Stamps {
    [&files.private_key, &files.certificate, &files.ca_cert].map(|p| {
        std::fs::metadata(p).ok().map(|m| FileStamp {
            len: m.len(),
            modified: m.modified().ok(),
            inode: m.ino(),
        })
    })
}

/// One loaded version of the files.
struct Loaded {
    /// The stamps the configurations were built from.
    stamps: Stamps,
    /// Stamps whose files failed to load: not retried until the files change again.
    failed: Option<Stamps>,
    configs: Arc<Configs>,
}

/// The configurations of one version of the files.
struct Configs {
    client: Arc<ClientConfig>,
    server: Arc<ServerConfig>,
    api_server: Arc<ServerConfig>,
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

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The CA certificates of `path` as trust anchors.
fn roots(path: &Path) -> Result<Arc<RootCertStore>, TlsError> {
    let mut roots = RootCertStore::empty();
    for ca in certs("CA certificate", path)? {
        roots.add(ca).map_err(|source| TlsError::Rejected {
            what: "CA certificate",
            path: path.into(),
            source,
        })?;
    }
    Ok(Arc::new(roots))
}

/// A client configuration that checks the server's chain to `roots` and nothing else.
fn client_builder(
    roots: Arc<RootCertStore>,
) -> Result<rustls::ConfigBuilder<ClientConfig, rustls::client::WantsClientCert>, rustls::Error> {
    let provider = provider();
    let verifier = CaChainVerifier { roots, algs: provider.signature_verification_algorithms };
    Ok(ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier)))
}

impl Configs {
    /// Reads the three files and builds the configurations (TLS 1.2 and 1.3; ovsdb-server
    /// and ovs-vswitchd 3.1 support TLSv1 to TLSv1.2 only (ovsdb-server(1) `--ssl-protocols`),
    /// so 1.2 is what they negotiate).
    fn load(files: &TlsFiles) -> Result<Configs, TlsError> {
        let chain = certs("certificate", &files.certificate)?;
        let key = key(&files.private_key)?;
        let roots = roots(&files.ca_cert)?;
        let rejected = |source| TlsError::Rejected {
            what: "certificate",
            path: files.certificate.clone(),
            source,
        };
        let client = client_builder(roots.clone())
            .map_err(rejected)?
            .with_client_auth_cert(chain.clone(), key.clone_key())
            .map_err(rejected)?;
        let client_verifier =
            WebPkiClientVerifier::builder_with_provider(roots, provider()).build().map_err(
                |e| TlsError::Verifier { path: files.ca_cert.clone(), reason: e.to_string() },
            )?;
        let server = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(rejected)?
            .with_client_cert_verifier(client_verifier)
            .with_single_cert(chain.clone(), key.clone_key())
            .map_err(rejected)?;
        let api_server = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(rejected)?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(rejected)?;
        Ok(Configs {
            client: Arc::new(client),
            server: Arc::new(server),
            api_server: Arc::new(api_server),
        })
    }
}

impl TlsConfig {
    /// Reads the three files and builds the configurations; reloads are logged nowhere until
    /// [`TlsConfig::with_log`].
    pub fn load(files: &TlsFiles) -> Result<TlsConfig, TlsError> {
        let stamps = stamps(files);
        let configs = Arc::new(Configs::load(files)?);
        Ok(TlsConfig {
            files: files.clone(),
            loaded: Arc::new(Mutex::new(Loaded { stamps, failed: None, configs })),
            log: Logger::root(slog::Discard, slog::o!()),
        })
    }

    /// Logs reloads (and files that changed but could not be used) to `log`.
    pub fn with_log(mut self, log: Logger) -> TlsConfig {
        self.log = log;
        self
    }

    /// The files this configuration was built from.
    pub fn files(&self) -> &TlsFiles {
        &self.files
    }

    /// The configurations for a new connection: reloaded first if the files changed.
    fn current(&self) -> Arc<Configs> {
        let now = stamps(&self.files);
        let mut loaded = match self.loaded.lock() {
            Ok(l) => l,
            // A panic elsewhere while holding the lock left a consistent value: use it.
            Err(poisoned) => poisoned.into_inner(),
        };
        if now == loaded.stamps || loaded.failed == Some(now) {
            return loaded.configs.clone();
        }
        match Configs::load(&self.files) {
            Ok(configs) => {
                info!(self.log, "TLS files changed: new connections use them";
                    "certificate" => %self.files.certificate.display(),
                    "ca_cert" => %self.files.ca_cert.display());
                loaded.configs = Arc::new(configs);
                loaded.stamps = now;
                loaded.failed = None;
            }
            Err(e) => {
                warn!(self.log, "TLS files changed but cannot be used: keeping the previous ones";
                    "error" => %e);
                loaded.failed = Some(now);
            }
        }
        loaded.configs.clone()
    }

    /// Connects TLS clients (`ssl:` remotes), presenting our certificate.
    pub fn connector(&self) -> TlsConnector {
        TlsConnector::from(self.current().client.clone())
    }

    /// Accepts TLS clients (`pssl:` remotes); a client without a certificate signed by the CA
    /// is refused.
    pub fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(self.current().server.clone())
    }

    /// Accepts HTTPS clients of the API, which present tokens rather than certificates.
    pub fn api_acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(self.current().api_server.clone())
    }
}

/// The client side of HTTPS to the API: checks that the server's certificate chains to a CA
/// and presents none of its own (the API's callers show a token). Cheap to clone.
#[derive(Clone)]
pub struct ApiClientTls(Arc<(PathBuf, Arc<ClientConfig>)>);

impl fmt::Debug for ApiClientTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiClientTls").field("ca_cert", &self.0 .0).finish_non_exhaustive()
    }
}

impl PartialEq for ApiClientTls {
    fn eq(&self, other: &Self) -> bool {
        self.0 .0 == other.0 .0
    }
}

impl Eq for ApiClientTls {}

impl ApiClientTls {
    /// Trusts servers whose certificate `ca_cert` (PEM) signed.
    pub fn load(ca_cert: &Path) -> Result<ApiClientTls, TlsError> {
        let config = client_builder(roots(ca_cert)?)
            .map_err(|source| TlsError::Rejected {
                what: "CA certificate",
                path: ca_cert.into(),
                source,
            })?
            .with_no_client_auth();
        Ok(ApiClientTls(Arc::new((ca_cert.into(), Arc::new(config)))))
    }

    /// Secures a connected blocking socket to `server` (whose name is not checked): the
    /// handshake is done when this returns, and its failure says why (see [`handshake_error`]).
    pub fn connect<S: std::io::Read + std::io::Write>(
        &self,
        server: std::net::SocketAddr,
        mut socket: S,
    ) -> std::io::Result<rustls::StreamOwned<rustls::ClientConnection, S>> {
        let name = ServerName::IpAddress(server.ip().into());
        let failed = |e| handshake_error(&format!("https://{server}"), e);
        let mut conn = rustls::ClientConnection::new(self.0 .1.clone(), name)
            .map_err(|e| failed(std::io::Error::other(e)))?;
        while conn.is_handshaking() {
            conn.complete_io(&mut socket).map_err(failed)?;
        }
        Ok(rustls::StreamOwned::new(conn, socket))
    }
}

/// Says what a failed handshake means for the user: a certificate the CA did not sign gets a
/// hint naming the flag to check.
pub fn handshake_error(remote: &str, e: std::io::Error) -> std::io::Error {
    let hint = match e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
        Some(rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer)) => {
            " (the peer's certificate is not signed by the CA of --ca-cert)"
        }
        Some(rustls::Error::InvalidCertificate(CertificateError::BadSignature)) => {
            // A CA of the same name as ours signed it (ovs-pki names its CAs by the second
            // they were made in), so the name matched and the signature did not.
            " (the peer's certificate is not signed by the CA of --ca-cert: its issuer has the CA's name but not its key)"
        }
        Some(rustls::Error::AlertReceived(
            AlertDescription::UnknownCA
            | AlertDescription::BadCertificate
            | AlertDescription::CertificateUnknown,
        )) => " (the peer does not accept our certificate: is it signed by the CA the peer was given?)",
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
