//! `periscope run --config FILE`: the tokens the operator hands out by file, and the default
//! quotas of tenants.
//!
//! ```toml
//! [quota]              # defaults for tenants without their own
//! tap_services = 64
//! tap_flows = 256
//!
//! [[token]]
//! name = "ops-alice"
//! sha256 = "9f86d0…"   # periscope token-hash, or sha256sum of the token
//! role = "operator"
//!
//! [[token]]
//! name = "bank-a-sdpm"
//! sha256 = "60303a…"
//! tenant = "bank-a"
//! ```
//!
//! Without any operator token in the file, the controller makes one on first start and keeps it
//! in `DATA_DIR/operator.token` (mode 0600), like a cluster's bootstrap credentials.

use std::path::Path;

use serde::Deserialize;

use super::auth::{new_token, KnownToken, Role, TokenHash, Tokens};

/// Tenants' limits when their own are not set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Quota {
    /// Tap services per tenant.
    #[serde(default = "default_services")]
    pub tap_services: u32,
    /// Tap flows per tenant.
    #[serde(default = "default_flows")]
    pub tap_flows: u32,
}

fn default_services() -> u32 {
    64
}

fn default_flows() -> u32 {
    256
}

impl Default for Quota {
    fn default() -> Self {
        Quota { tap_services: default_services(), tap_flows: default_flows() }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenEntry {
    name: String,
    sha256: String,
    role: Option<String>,
    tenant: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    quota: Option<Quota>,
    #[serde(default)]
    token: Vec<TokenEntry>,
}

/// The configuration as loaded.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// Default quotas.
    pub quota: Quota,
    /// Tokens from the file.
    pub tokens: Tokens,
}

impl Config {
    /// Parses the file's text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Config, String> {
        let f: File = toml::from_str(text).map_err(|e| format!("{origin}: {e}"))?;
        let mut tokens = Tokens::new();
        for (i, t) in f.token.iter().enumerate() {
            let at = format!("{origin}: token #{} ({:?})", i + 1, t.name);
            if t.name.is_empty() {
                return Err(format!("{at}: name is empty"));
            }
            let hash = TokenHash::parse(&t.sha256).map_err(|e| format!("{at}: sha256: {e}"))?;
            let role = match (t.role.as_deref(), &t.tenant) {
                (Some("operator"), None) => Role::Operator,
                (None | Some("tenant"), Some(tenant)) if !tenant.is_empty() => {
                    Role::Tenant(tenant.clone())
                }
                _ => {
                    return Err(format!(
                        "{at}: give either role = \"operator\" or tenant = \"NAME\", not both"
                    ))
                }
            };
            if tokens.has_name(&t.name) {
                return Err(format!("{at}: a token of that name is given twice"));
            }
            tokens.insert(hash, KnownToken { name: t.name.clone(), role, origin: "config" });
        }
        Ok(Config { quota: f.quota.unwrap_or_default(), tokens })
    }

    /// Reads `path`.
    pub fn load(path: &Path) -> Result<Config, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("reading {}: {e}", path.display()))?;
        Config::parse(&text, &path.display().to_string())
    }

    /// Whether the file gives an operator token.
    pub fn has_operator(&self) -> bool {
        self.tokens.known().any(|t| t.role == Role::Operator)
    }
}

/// The bootstrap operator token in `dir/operator.token`: read if it is there, made (readable
/// by its owner only) if not. Returns its hash and the file's path.
pub fn bootstrap_token(dir: &Path) -> Result<(TokenHash, std::path::PathBuf), String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let path = dir.join("operator.token");
    if let Ok(text) = std::fs::read_to_string(&path) {
        let token = text.trim();
        if token.is_empty() {
            return Err(format!("{} is empty: remove it to get a new token", path.display()));
        }
        return Ok((TokenHash::of(token), path));
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let token = new_token()?;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .map_err(|e| format!("creating {}: {e}", path.display()))?;
    writeln!(f, "{token}").map_err(|e| format!("writing {}: {e}", path.display()))?;
    Ok((TokenHash::of(&token), path))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASH: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

    #[test]
    fn tokens_and_quotas_are_read() {
        let c = Config::parse(
            &format!(
                "[quota]\ntap_services = 3\n[[token]]\nname = \"ops\"\nsha256 = \"{HASH}\"\nrole = \"operator\"\n"
            ),
            "test.toml",
        )
        .expect("valid");
        assert_eq!(c.quota, Quota { tap_services: 3, tap_flows: 256 });
        assert!(c.has_operator());
        assert_eq!(c.tokens.caller(&TokenHash::of("abc")).map(|c| c.role), Some(Role::Operator));
    }

    #[test]
    fn bad_entries_are_named() {
        let e =
            Config::parse("[[token]]\nname = \"x\"\nsha256 = \"12\"\ntenant = \"a\"\n", "c.toml")
                .expect_err("short hash");
        assert!(e.contains("c.toml: token #1 (\"x\"): sha256"), "{e}");
        let e = Config::parse(
            &format!("[[token]]\nname = \"x\"\nsha256 = \"{HASH}\"\nrole = \"operator\"\ntenant = \"a\"\n"),
            "c.toml",
        )
        .expect_err("both");
        assert!(e.contains("not both"), "{e}");
        let e = Config::parse("[quota]\ntap_service = 1\n", "c.toml").expect_err("typo");
        assert!(e.contains("tap_service"), "{e}");
    }

    #[test]
    fn the_bootstrap_token_is_made_once_and_kept_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("periscope-boot-{}", std::process::id()));
        let (h1, path) = bootstrap_token(&dir).expect("made");
        let (h2, _) = bootstrap_token(&dir).expect("read");
        assert_eq!(h1, h2);
        let mode = std::fs::metadata(&path).expect("file").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let token = std::fs::read_to_string(&path).expect("readable");
        assert_eq!(TokenHash::of(token.trim()), h1);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
