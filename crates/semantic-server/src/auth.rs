//! API keys: who may call the API, and who may call `/admin/*`.
//!
//! Keys are held only as SHA-256 digests, so they cannot leak through a
//! `Debug` print or a log line, and every check compares fixed-size digests
//! in constant time against *every* configured key (no early exit), so
//! neither the length nor the position of a matching key shows in timing.
//!
//! A key is accepted as `Authorization: Bearer <key>` (the OpenAI SDKs) or
//! `x-api-key: <key>` (the Anthropic SDKs).

use axum::http::{header, HeaderMap};
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

/// A key that cannot be configured.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidKey {
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
    admin_key: Option<KeyDigest>,
}

/// Counts only: the digests are not secret-free enough to print.
impl std::fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthConfig")
            .field("api_keys", &self.api_keys.len())
            .field("admin_key", &self.admin_key.is_some())
            .finish()
    }
}

impl AuthConfig {
    /// Keys from `--api-key` (and the key file) and `--admin-key`.
    pub fn new<K: AsRef<str>>(
        api_keys: impl IntoIterator<Item = K>,
        admin_key: Option<&str>,
    ) -> Result<Self, InvalidKey> {
        let api_keys = api_keys
            .into_iter()
            .map(|k| checked(k.as_ref(), "--api-key"))
            .collect::<Result<Vec<_>, _>>()?;
        let admin_key = admin_key.map(|k| checked(k, "--admin-key")).transpose()?;
        Ok(Self {
            api_keys,
            admin_key,
        })
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

/// Keys in `--api-key-file` text: one per line; blank lines and lines
/// starting with `#` are skipped; surrounding whitespace is trimmed.
pub fn parse_key_file(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect()
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
        let keys = parse_key_file("# team a\nk1\n\n  k2  \n#k3\n");
        assert_eq!(keys, ["k1", "k2"]);
        assert!(AuthConfig::new([""], None).is_err());
        assert!(AuthConfig::new(["has space"], None).is_err());
        assert!(!format!("{:?}", config()).contains("k1"));
    }
}
