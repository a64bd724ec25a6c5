//! Who is calling: bearer tokens, kept only as SHA-256 hashes, each naming the operator role or
//! one tenant.
//!
//! A token is 32 random bytes written as `psc_` and 64 hex digits. The controller never stores
//! one: the configuration file, the northbound database and the bootstrap file's reader all
//! hold or compare the hash.

use std::collections::BTreeMap;
use std::fmt;

use ring::digest::{digest, SHA256};
use ring::rand::{SecureRandom, SystemRandom};
use serde::Serialize;

/// Prefix of every token periscope makes.
pub const TOKEN_PREFIX: &str = "psc_";

/// The SHA-256 of a token, in lower-case hex.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct TokenHash(pub String);

impl TokenHash {
    /// The hash of `token` as presented by a client.
    pub fn of(token: &str) -> TokenHash {
        TokenHash(hex(digest(&SHA256, token.as_bytes()).as_ref()))
    }

    /// Parses a hash written in a file: 64 hex digits.
    pub fn parse(s: &str) -> Result<TokenHash, String> {
        let s = s.trim();
        if s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
            Ok(TokenHash(s.to_ascii_lowercase()))
        } else {
            Err(format!("{s:?} is not a SHA-256 hash (64 hex digits)"))
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A fresh random token.
pub fn new_token() -> Result<String, String> {
    let mut raw = [0u8; 32];
    SystemRandom::new()
        .fill(&mut raw)
        .map_err(|_| "the system random source failed".to_string())?;
    Ok(format!("{TOKEN_PREFIX}{}", hex(&raw)))
}

/// What a token allows.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(tag = "role", content = "tenant", rename_all = "snake_case")]
pub enum Role {
    /// Everything, for every tenant.
    Operator,
    /// One tenant's own objects.
    Tenant(String),
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Role::Operator => f.write_str("operator"),
            Role::Tenant(t) => write!(f, "tenant {t}"),
        }
    }
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Caller {
    /// The token's name (for the audit trail).
    pub name: String,
    /// What it may do.
    pub role: Role,
}

impl Caller {
    /// The operator, named `name`.
    pub fn operator(name: &str) -> Caller {
        Caller { name: name.to_string(), role: Role::Operator }
    }

    /// Whether the caller may see and change `tenant`'s objects.
    pub fn may_act_for(&self, tenant: &str) -> bool {
        match &self.role {
            Role::Operator => true,
            Role::Tenant(t) => t == tenant,
        }
    }

    /// The caller's tenant, if it is one.
    pub fn tenant(&self) -> Option<&str> {
        match &self.role {
            Role::Operator => None,
            Role::Tenant(t) => Some(t),
        }
    }

    /// Whether the caller is the operator.
    pub fn is_operator(&self) -> bool {
        self.role == Role::Operator
    }
}

/// A token known to the controller, without the token itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KnownToken {
    /// Its name, unique.
    pub name: String,
    /// What it allows.
    #[serde(flatten)]
    pub role: Role,
    /// Where it comes from: `config`, `bootstrap` or `api`.
    pub origin: &'static str,
}

/// Token hashes to what they allow.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tokens {
    by_hash: BTreeMap<TokenHash, KnownToken>,
}

impl Tokens {
    /// No tokens.
    pub fn new() -> Self {
        Tokens::default()
    }

    /// Adds a token; a hash already known keeps its first meaning.
    pub fn insert(&mut self, hash: TokenHash, token: KnownToken) {
        self.by_hash.entry(hash).or_insert(token);
    }

    /// Who presents `hash`, if anyone.
    pub fn caller(&self, hash: &TokenHash) -> Option<Caller> {
        self.by_hash.get(hash).map(|t| Caller { name: t.name.clone(), role: t.role.clone() })
    }

    /// Every token, by name.
    pub fn known(&self) -> impl Iterator<Item = &KnownToken> {
        self.by_hash.values()
    }

    /// Whether a token of that name exists.
    pub fn has_name(&self, name: &str) -> bool {
        self.by_hash.values().any(|t| t.name == name)
    }

    /// The same tokens but the one named `name`.
    pub fn without(&self, name: &str) -> Tokens {
        let by_hash = self
            .by_hash
            .iter()
            .filter(|(_, t)| t.name != name)
            .map(|(h, t)| (h.clone(), t.clone()));
        Tokens { by_hash: by_hash.collect() }
    }

    /// The tokens of both sets (`self` wins on a hash both hold).
    pub fn merged(&self, other: &Tokens) -> Tokens {
        let mut all = self.clone();
        for (h, t) in &other.by_hash {
            all.insert(h.clone(), t.clone());
        }
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_sha256_hex_of_the_token() {
        // SHA-256("abc"), FIPS 180-2 appendix B.1.
        assert_eq!(
            TokenHash::of("abc").0,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(TokenHash::parse("zz").is_err());
        let t = new_token().expect("random");
        assert!(t.starts_with(TOKEN_PREFIX) && t.len() == TOKEN_PREFIX.len() + 64);
        assert_ne!(t, new_token().expect("random"));
    }

    #[test]
    fn a_tenant_acts_only_for_itself() {
        let mut tokens = Tokens::new();
        let role = Role::Tenant("bank-a".into());
        tokens.insert(TokenHash::of("t"), KnownToken { name: "a".into(), role, origin: "api" });
        let c = tokens.caller(&TokenHash::of("t")).expect("known");
        assert!(c.may_act_for("bank-a") && !c.may_act_for("bank-b"));
        assert!(tokens.caller(&TokenHash::of("u")).is_none());
        assert!(Caller::operator("ops").may_act_for("bank-b"));
    }
}
