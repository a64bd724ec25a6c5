//! A public key infrastructure made with Open vSwitch's own `ovs-pki`, for TLS between the
//! controller and the lab's switches and ovsdb-servers: `init` makes a `controllerca` and a
//! `switchca`; the controller's identity is signed by the first, switches' by the second, and
//! each side trusts the other's CA (as `ovs-pki`'s documentation sets up a deployment).

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{LabError, Result};

/// One `ovs-pki` directory and the identities signed in it.
#[derive(Debug, Clone)]
pub struct Pki {
    dir: PathBuf,
}

/// One identity's files, as `--private-key`, `--certificate` and `--ca-cert` take them (the CA
/// being the one its peers' certificates must chain to).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// `NAME-privkey.pem`.
    pub private_key: PathBuf,
    /// `NAME-cert.pem`.
    pub certificate: PathBuf,
    /// The CA of the other side (`switchca` for a controller, `controllerca` for a switch).
    pub ca_cert: PathBuf,
}

impl From<Identity> for crate::tls::TlsFiles {
    fn from(i: Identity) -> Self {
        crate::tls::TlsFiles {
            private_key: i.private_key,
            certificate: i.certificate,
            ca_cert: i.ca_cert,
        }
    }
}

fn ovs_pki(dir: &Path, args: &[&str]) -> Result<()> {
    let pki = format!("--dir={}", dir.join("pki").display());
    let command = format!("ovs-pki {pki} {}", args.join(" "));
    let out = Command::new("ovs-pki")
        .arg(&pki)
        .args(args)
        .current_dir(dir)
        .output()
        .map_err(|source| LabError::Spawn { command: command.clone(), source })?;
    if !out.status.success() {
        return Err(LabError::Command {
            command,
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(())
}

impl Pki {
    /// Makes a new PKI (two CAs) in `dir`, which is created. Takes a few seconds.
    pub fn new(dir: &Path) -> Result<Pki> {
        std::fs::create_dir_all(dir).map_err(|source| LabError::Io {
            what: format!("creating {}", dir.display()),
            source,
        })?;
        ovs_pki(dir, &["init"])?;
        Ok(Pki { dir: dir.into() })
    }

    /// The PKI's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The certificate of the CA that signs controllers (what switches trust).
    pub fn controller_ca(&self) -> PathBuf {
        self.dir.join("pki/controllerca/cacert.pem")
    }

    /// The certificate of the CA that signs switches (what the controller trusts).
    pub fn switch_ca(&self) -> PathBuf {
        self.dir.join("pki/switchca/cacert.pem")
    }

    fn sign(&self, name: &str, kind: &str, ca_cert: PathBuf) -> Result<Identity> {
        // A relative name: ovs-pki puts it in the subject's CN, limited to 64 bytes.
        ovs_pki(&self.dir, &["req+sign", name, kind])?;
        Ok(Identity {
            private_key: self.dir.join(format!("{name}-privkey.pem")),
            certificate: self.dir.join(format!("{name}-cert.pem")),
            ca_cert,
        })
    }

    /// A controller identity named `name` (1 to 30 of `a-z0-9-`), trusting switches.
    pub fn controller(&self, name: &str) -> Result<Identity> {
        self.sign(name, "controller", self.switch_ca())
    }

    /// A switch identity named `name`, trusting controllers.
    pub fn switch(&self, name: &str) -> Result<Identity> {
        self.sign(name, "switch", self.controller_ca())
    }
}
