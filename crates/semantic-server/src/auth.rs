//! API keys: who may call the API, and who may call `/admin/*`.
//!
//! Keys are held only as SHA-256 digests, so they cannot leak through a
//! `Debug` print or a log line, and every check compares fixed-size digests
//! in constant time against *every* configured key (no early exit), so
//! neither the length nor the position of a matching key shows in timing.
//!
//! A key is accepted as `Authorization: Bearer <key>` (the OpenAI SDKs) or
//! `x-api-key: <key>` (the Anthropic SDKs).
//!
//! Every key belongs to a tenant ([`TenantId`]): the one its key file line
//! names (`KEY tenant=NAME`), else a tenant of its own named from a digest
//! of the key. With no keys there is one open tenant.

use axum::http::{header, HeaderMap};
use semantic_domain::{InvalidTenant, TenantId};
use sha2::{Digest, Sha256};
use subtle::{ConditionallySelectable, ConstantTimeEq};

use crate::error::ApiError;

/// The headers a key may come in, as the 401 message names them.
pub const ACCEPTED_HEADERS: &str = "`Authorization: Bearer <key>` or `x-api-key: <key>`";

/// A configured key, as its digest.
#[derive(Clone, PartialEq, Eq)]
struct KeyDigest([u8; 32]);

impl KeyDigest {
    fn of(key: &[u8]) -> Self {
        Self(Sha256::digest(key).into())
    }
}

/// One configured API key and, if named, the tenant it belongs to.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey {
    pub key: String,
    /// `None`: the key is a tenant of its own.
    pub tenant: Option<TenantId>,
}

/// Never prints the key.
impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKey")
            .field("tenant", &self.tenant)
            .finish_non_exhaustive()
    }
}

impl From<&str> for ApiKey {
    fn from(key: &str) -> Self {
        Self {
            key: key.to_owned(),
            tenant: None,
        }
    }
}

impl From<String> for ApiKey {
    fn from(key: String) -> Self {
        Self { key, tenant: None }
    }
}

/// A key that cannot be configured.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidKey {
    #[error("{setting}: the same API key is configured for tenants {first} and {second}")]
    TwoTenants {
        setting: &'static str,
        first: TenantId,
        second: TenantId,
    },
    #[error("{setting}: an API key must not be empty")]
    Empty { setting: &'static str },
    #[error(
        "{setting}: an API key must be visible ASCII without spaces (it travels in an HTTP header)"
    )]
    NotHeaderSafe { setting: &'static str },
}

/// The configured keys. With no API key, the API is open (the CLI then
/// refuses to listen beyond loopback unless told to); with no admin key,
/// `/admin/*` is disabled.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct AuthConfig {
    api_keys: Vec<KeyDigest>,
    /// The tenant of each key, by index.
    tenants: Vec<TenantId>,
    admin_key: Option<KeyDigest>,
}

/// Counts only: the digests are not secret-free enough to print.
impl std::fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthConfig")
            .field("api_keys", &self.api_keys.len())
            .field("tenants", &self.tenants)
            .field("admin_key", &self.admin_key.is_some())
            .finish()
    }
}

impl AuthConfig {
    /// Keys from `--api-key` (and the key file) and `--admin-key`. A key
    /// given twice counts once; given for two tenants, it is refused.
    pub fn new<K: Into<ApiKey>>(
        api_keys: impl IntoIterator<Item = K>,
        admin_key: Option<&str>,
    ) -> Result<Self, InvalidKey> {
        let setting = "--api-key";
        let mut digests: Vec<KeyDigest> = Vec::new();
        let mut tenants: Vec<TenantId> = Vec::new();
        for key in api_keys {
            let ApiKey { key, tenant } = key.into();
            let digest = checked(&key, setting)?;
            let tenant = tenant.unwrap_or_else(|| own_tenant(&key));
            match digests.iter().position(|d| *d == digest) {
                Some(i) if tenants[i] != tenant => {
                    return Err(InvalidKey::TwoTenants {
                        setting,
                        first: tenants[i].clone(),
                        second: tenant,
                    })
                }
                Some(_) => {}
                None => {
                    digests.push(digest);
                    tenants.push(tenant);
                }
            }
        }
        let admin_key = admin_key.map(|k| checked(k, "--admin-key")).transpose()?;
        Ok(Self {
            api_keys: digests,
            tenants,
            admin_key,
        })
    }

    /// The tenant a caller acts for: its key's, or the open tenant when no
    /// key is needed.
    pub fn tenant_of(&self, caller: Caller) -> TenantId {
        match caller {
            Caller::ApiKey(i) => self.tenants.get(i).cloned().unwrap_or_else(TenantId::open),
            Caller::Anonymous | Caller::Admin => TenantId::open(),
        }
    }

    /// Every configured key's tenant, each once, sorted.
    pub fn tenants(&self) -> Vec<TenantId> {
        let mut tenants = self.tenants.clone();
        tenants.sort();
        tenants.dedup();
        tenants
    }

    /// True when API routes need a key.
    pub fn api_keys_required(&self) -> bool {
        !self.api_keys.is_empty()
    }

    pub fn admin_enabled(&self) -> bool {
        self.admin_key.is_some()
    }

    /// Who sent `headers`, if they may use a route of kind `access`.
    pub fn authorize(&self, access: Access, headers: &HeaderMap) -> Result<Caller, ApiError> {
        match access {
            Access::Public => Ok(Caller::Anonymous),
            Access::Api => self.authorize_api(headers),
            Access::Admin => self.authorize_admin(headers),
        }
    }

    fn authorize_api(&self, headers: &HeaderMap) -> Result<Caller, ApiError> {
        if !self.api_keys_required() {
            return Ok(Caller::Anonymous);
        }
        let presented = presented_keys(headers);
        if presented.is_empty() {
            return Err(missing_key());
        }
        presented
            .iter()
            .find_map(|key| find(&self.api_keys, &KeyDigest::of(key)))
            .map(Caller::ApiKey)
            .ok_or_else(|| {
                ApiError::unauthorized(format!(
                    "invalid API key; send a key the server was started with as {ACCEPTED_HEADERS}"
                ))
            })
    }

    fn authorize_admin(&self, headers: &HeaderMap) -> Result<Caller, ApiError> {
        let Some(admin) = &self.admin_key else {
            return Err(ApiError::forbidden(
                "admin routes are disabled; start the server with --admin-key \
                 (or SEMANTIC_ADMIN_KEY) to enable them",
            ));
        };
        let presented = presented_keys(headers);
        if presented.is_empty() {
            return Err(missing_key());
        }
        let digests: Vec<KeyDigest> = presented.iter().map(|k| KeyDigest::of(k)).collect();
        if digests
            .iter()
            .any(|d| find(std::slice::from_ref(admin), d).is_some())
        {
            return Ok(Caller::Admin);
        }
        if digests.iter().any(|d| find(&self.api_keys, d).is_some()) {
            return Err(ApiError::forbidden(
                "this API key may not use admin routes; send the admin key (--admin-key)",
            ));
        }
        Err(ApiError::unauthorized(format!(
            "invalid admin key; send the key set with --admin-key as {ACCEPTED_HEADERS}"
        )))
    }
}

/// What kind of key a route needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Probes, metrics and the API description: no key, never rate limited.
    Public,
    /// The inference API and our agent extension.
    Api,
    /// `/admin/*`: the admin key only.
    Admin,
}

impl Access {
    /// Classify by path, so routes added anywhere are covered: only the
    /// listed public prefixes go without a key.
    pub fn of_path(path: &str) -> Self {
        let under = |prefix: &str| {
            path == prefix
                || path
                    .strip_prefix(prefix)
                    .is_some_and(|rest| rest.starts_with('/'))
        };
        if under("/health") || under("/metrics") || path == "/openapi.json" {
            Self::Public
        } else if under("/admin") {
            Self::Admin
        } else {
            Self::Api
        }
    }
}

/// Who a request comes from, for per-key rate limits. Holds the index of
/// the matching key, never the key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Caller {
    /// No key needed (auth off, or a public route).
    Anonymous,
    ApiKey(usize),
    Admin,
}

/// A line of a key file that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyFileError {
    #[error("line {line}: expected `KEY` or `KEY tenant=NAME`, found {found} fields")]
    Fields { line: usize, found: usize },
    #[error("line {line}: the second field must be `tenant=NAME`")]
    NotTenant { line: usize },
    #[error("line {line}: {reason}")]
    BadTenant { line: usize, reason: InvalidTenant },
}

/// Keys in `--api-key-file` text: one per line, `KEY` (a tenant of its
/// own) or `KEY tenant=NAME` (keys naming the same tenant share its agents
/// and prefixes); blank lines and lines starting with `#` are skipped;
/// surrounding whitespace is trimmed. Errors name the line, never the key.
pub fn parse_key_file(text: &str) -> Result<Vec<ApiKey>, KeyFileError> {
    let mut keys = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = trimmed.split_ascii_whitespace().collect();
        let tenant = match fields.as_slice() {
            [_] => None,
            [_, spec] => {
                let name = spec
                    .strip_prefix("tenant=")
                    .ok_or(KeyFileError::NotTenant { line })?;
                Some(
                    TenantId::parse(name)
                        .map_err(|reason| KeyFileError::BadTenant { line, reason })?,
                )
            }
            other => {
                return Err(KeyFileError::Fields {
                    line,
                    found: other.len(),
                })
            }
        };
        keys.push(ApiKey {
            key: fields[0].to_owned(),
            tenant,
        });
    }
    Ok(keys)
}

/// The tenant of a key configured without one: stable across restarts
/// (agents' files are found again), revealing nothing of the key, and
/// separate from the digest the key is checked against.
fn own_tenant(key: &str) -> TenantId {
    let digest = Sha256::new()
        .chain_update(b"semantic tenant of key\0")
        .chain_update(key.as_bytes())
        .finalize();
    TenantId::of_key_digest(&digest)
}

fn checked(key: &str, setting: &'static str) -> Result<KeyDigest, InvalidKey> {
    if key.is_empty() {
        return Err(InvalidKey::Empty { setting });
    }
    if !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(InvalidKey::NotHeaderSafe { setting });
    }
    Ok(KeyDigest::of(key.as_bytes()))
}

fn missing_key() -> ApiError {
    ApiError::unauthorized(format!("missing API key; send it as {ACCEPTED_HEADERS}"))
        .with_code("missing_api_key")
}

/// The credentials a request carries, in either accepted header.
fn presented_keys(headers: &HeaderMap) -> Vec<&[u8]> {
    let bearer = headers
        .get_all(header::AUTHORIZATION)
        .iter()
        .filter_map(|v| bearer_token(v.as_bytes()));
    let api_key = headers
        .get_all("x-api-key")
        .iter()
        .map(|v| v.as_bytes().trim_ascii())
        .filter(|k| !k.is_empty());
    bearer.chain(api_key).collect()
}

/// The token of `Bearer <token>` (scheme case-insensitive).
fn bearer_token(value: &[u8]) -> Option<&[u8]> {
    let value = value.trim_ascii();
    let (scheme, rest) = value.split_at_checked(6)?;
    if !scheme.eq_ignore_ascii_case(b"bearer") || !rest.first()?.is_ascii_whitespace() {
        return None;
    }
    Some(rest.trim_ascii()).filter(|t| !t.is_empty())
}

/// The index of the key equal to `presented`, comparing against every key.
fn find(keys: &[KeyDigest], presented: &KeyDigest) -> Option<usize> {
    // 0 = no match, else index + 1; selected without branching on secrets.
    let mut found = 0u64;
    for (i, key) in keys.iter().enumerate() {
        let hit = key.0.ct_eq(&presented.0);
        found.conditional_assign(&(i as u64 + 1), hit);
    }
    usize::try_from(found).ok()?.checked_sub(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    fn config() -> AuthConfig {
        AuthConfig::new(["k1", "k2"], Some("admin")).unwrap()
    }

    #[test]
    fn bearer_and_x_api_key_both_identify_the_key() {
        let c = config();
        let bearer = headers(&[("authorization", "Bearer k2")]);
        assert_eq!(
            c.authorize(Access::Api, &bearer).unwrap(),
            Caller::ApiKey(1)
        );
        let lower = headers(&[("authorization", "bearer  k1 ")]);
        assert_eq!(c.authorize(Access::Api, &lower).unwrap(), Caller::ApiKey(0));
        let x = headers(&[("x-api-key", "k1")]);
        assert_eq!(c.authorize(Access::Api, &x).unwrap(), Caller::ApiKey(0));
    }

    #[test]
    fn missing_and_wrong_keys_are_401_without_echoing_the_key() {
        let c = config();
        let e = c.authorize(Access::Api, &HeaderMap::new()).unwrap_err();
        assert_eq!(e.status, StatusCode::UNAUTHORIZED);
        assert!(e.message.contains("x-api-key"), "{}", e.message);
        let e = c
            .authorize(Access::Api, &headers(&[("authorization", "Bearer sekrit")]))
            .unwrap_err();
        assert_eq!(e.status, StatusCode::UNAUTHORIZED);
        assert!(!e.message.contains("sekrit"), "{}", e.message);
        let basic = headers(&[("authorization", "Basic k1")]);
        assert!(c.authorize(Access::Api, &basic).is_err());
    }

    #[test]
    fn admin_routes_need_the_admin_key() {
        let c = config();
        let admin = headers(&[("x-api-key", "admin")]);
        assert_eq!(c.authorize(Access::Admin, &admin).unwrap(), Caller::Admin);
        let user = headers(&[("x-api-key", "k1")]);
        let e = c.authorize(Access::Admin, &user).unwrap_err();
        assert_eq!(e.status, StatusCode::FORBIDDEN);
        let e = c.authorize(Access::Admin, &HeaderMap::new()).unwrap_err();
        assert_eq!(e.status, StatusCode::UNAUTHORIZED);
        let off = AuthConfig::new(["k1"], None).unwrap();
        let e = off.authorize(Access::Admin, &admin).unwrap_err();
        assert_eq!(e.status, StatusCode::FORBIDDEN);
        assert!(e.message.contains("--admin-key"), "{}", e.message);
    }

    #[test]
    fn no_api_key_means_open_api() {
        let open = AuthConfig::default();
        assert_eq!(
            open.authorize(Access::Api, &HeaderMap::new()).unwrap(),
            Caller::Anonymous
        );
    }

    #[test]
    fn paths_are_classified_by_prefix() {
        assert_eq!(Access::of_path("/health/live"), Access::Public);
        assert_eq!(Access::of_path("/metrics"), Access::Public);
        assert_eq!(Access::of_path("/openapi.json"), Access::Public);
        assert_eq!(Access::of_path("/healthz"), Access::Api);
        assert_eq!(Access::of_path("/admin/caches"), Access::Admin);
        assert_eq!(Access::of_path("/administrator"), Access::Api);
        assert_eq!(Access::of_path("/v1/chat/completions"), Access::Api);
    }

    #[test]
    fn key_files_skip_comments_and_blanks_and_bad_keys_are_refused() {
        let keys = parse_key_file("# team a\nk1\n\n  k2  \n#k3\n").unwrap();
        let names: Vec<&str> = keys.iter().map(|k| k.key.as_str()).collect();
        assert_eq!(names, ["k1", "k2"]);
        assert!(AuthConfig::new([""], None).is_err());
        assert!(AuthConfig::new(["has space"], None).is_err());
        assert!(!format!("{:?}", config()).contains("k1"));
    }

    #[test]
    fn key_files_group_keys_into_named_tenants() {
        let keys = parse_key_file("k1 tenant=team-a\nk2   tenant=team-a\nk3\n").unwrap();
        let auth = AuthConfig::new(keys, None).unwrap();
        let team = TenantId::parse("team-a").unwrap();
        assert_eq!(auth.tenant_of(Caller::ApiKey(0)), team);
        assert_eq!(auth.tenant_of(Caller::ApiKey(1)), team);
        let own = auth.tenant_of(Caller::ApiKey(2));
        assert!(own.as_str().starts_with("key-"), "{own}");
        assert!(!own.as_str().contains("k3"));
        // Stable across restarts: the same key gets the same tenant.
        let again = AuthConfig::new(["k3"], None).unwrap();
        assert_eq!(again.tenant_of(Caller::ApiKey(0)), own);
        assert_eq!(auth.tenant_of(Caller::Anonymous), TenantId::open());
    }

    #[test]
    fn bad_key_file_lines_are_refused_naming_the_line_not_the_key() {
        let e = parse_key_file("ok\nsekrit team-a\n").unwrap_err();
        assert_eq!(e, KeyFileError::NotTenant { line: 2 });
        let e = parse_key_file("sekrit tenant=a tenant=b").unwrap_err();
        assert!(!e.to_string().contains("sekrit"), "{e}");
        let e = parse_key_file("k tenant=key-1234").unwrap_err();
        assert!(e.to_string().contains("reserved"), "{e}");
        let e = parse_key_file("k tenant=../x").unwrap_err();
        assert!(matches!(e, KeyFileError::BadTenant { line: 1, .. }), "{e}");
        let two = [
            ApiKey {
                key: "k".into(),
                tenant: Some(TenantId::parse("a").unwrap()),
            },
            ApiKey {
                key: "k".into(),
                tenant: Some(TenantId::parse("b").unwrap()),
            },
        ];
        assert!(matches!(
            AuthConfig::new(two, None),
            Err(InvalidKey::TwoTenants { .. })
        ));
    }
}
