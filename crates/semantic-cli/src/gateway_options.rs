//! `serve` flags for what stands between clients and the engine: API and
//! admin keys, rate limits, request limits, and the model-swap drain.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;
use semantic_server::auth::ApiKey;
use semantic_server::{
    AuthConfig, ModelAlias, ModelAliases, RateLimitConfig, RequestLimits, ServerConfig,
};

use crate::byte_size::ByteSize;

#[derive(Args, Debug)]
pub struct GatewayOptions {
    /// An API key clients must send (`Authorization: Bearer` or
    /// `x-api-key`). Repeatable; the env var takes a comma-separated list.
    /// Prefer the env var or --api-key-file: arguments show in `ps`.
    #[arg(
        long = "api-key",
        env = "SEMANTIC_API_KEYS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub api_keys: Vec<String>,
    /// A file of API keys, one per line: `KEY`, a tenant of its own, or
    /// `KEY tenant=NAME`, keys of one tenant sharing its agents (`#` starts
    /// a comment line). Each key given by --api-key is a tenant of its own.
    #[arg(long, env = "SEMANTIC_API_KEY_FILE")]
    pub api_key_file: Option<PathBuf>,
    /// The key for `/admin/*` (separate from API keys). Without it, admin
    /// routes are disabled.
    #[arg(long, env = "SEMANTIC_ADMIN_KEY", hide_env_values = true)]
    pub admin_key: Option<String>,
    /// Serve an open API (no API key) on a non-loopback --host anyway.
    #[arg(long, env = "SEMANTIC_ALLOW_UNAUTHENTICATED")]
    pub allow_unauthenticated: bool,
    /// Requests per minute per API key (off by default).
    #[arg(long, env = "SEMANTIC_RATE_LIMIT_PER_KEY")]
    pub rate_limit_per_key: Option<NonZeroU32>,
    /// Requests per minute per agent (off by default).
    #[arg(long, env = "SEMANTIC_RATE_LIMIT_PER_AGENT")]
    pub rate_limit_per_agent: Option<NonZeroU32>,
    /// Requests a key or agent may make at once before its rate applies
    /// (default: the per-minute rate).
    #[arg(long, env = "SEMANTIC_RATE_LIMIT_BURST")]
    pub rate_limit_burst: Option<NonZeroU32>,
    /// Most messages one request may carry (400 beyond).
    #[arg(long, env = "SEMANTIC_MAX_MESSAGES", default_value_t = semantic_server::limits::DEFAULT_MAX_MESSAGES)]
    pub max_messages: usize,
    /// Largest request body (413 beyond), e.g. `4MiB`.
    #[arg(long, env = "SEMANTIC_MAX_BODY_BYTES", default_value = "4MiB")]
    pub max_body_bytes: ByteSize,
    /// Another name clients may call the model by, as NAME=MODEL (MODEL:
    /// `default` or the model's id; NAME `*` catches every unknown name),
    /// e.g. `claude-sonnet-4-5=default` or `*=default`. Repeatable; the env
    /// var takes a comma-separated list.
    #[arg(
        long = "model-alias",
        env = "SEMANTIC_MODEL_ALIASES",
        value_delimiter = ','
    )]
    pub model_aliases: Vec<ModelAlias>,
    /// Seconds a stream may go without an event before an Anthropic `ping`
    /// is sent (while a request waits in the queue or prefills), so clients
    /// with an event watchdog, like Claude Code, keep waiting.
    #[arg(long, env = "SEMANTIC_STREAM_PING_INTERVAL", default_value_t = 15)]
    pub stream_ping_interval: u64,
    /// Seconds a model swap waits for in-flight requests before failing them.
    #[arg(long, env = "SEMANTIC_SWAP_DRAIN_TIMEOUT", default_value_t = 30)]
    pub swap_drain_timeout: u64,
}

impl GatewayOptions {
    /// The server settings, refusing an open API beyond loopback unless
    /// --allow-unauthenticated says so.
    pub fn server_config(&self, host: IpAddr, port: u16) -> anyhow::Result<ServerConfig> {
        let auth = AuthConfig::new(self.all_api_keys()?, self.admin_key.as_deref())?;
        if !auth.api_keys_required() && !host.is_loopback() && !self.allow_unauthenticated {
            bail!(
                "refusing to serve without an API key on non-loopback --host {host}: set \
                 --api-key / SEMANTIC_API_KEYS or --api-key-file, or pass \
                 --allow-unauthenticated (SEMANTIC_ALLOW_UNAUTHENTICATED=true) to expose an open API"
            );
        }
        let max_body_bytes = usize::try_from(self.max_body_bytes.0)
            .context("--max-body-bytes is larger than this platform can address")?;
        if max_body_bytes == 0 {
            bail!("--max-body-bytes must be more than 0");
        }
        if self.max_messages == 0 {
            bail!("--max-messages must be at least 1");
        }
        if self.stream_ping_interval == 0 {
            bail!("--stream-ping-interval must be at least 1 second");
        }
        Ok(ServerConfig {
            host,
            port,
            auth,
            rate_limits: RateLimitConfig {
                per_key_per_minute: self.rate_limit_per_key,
                per_agent_per_minute: self.rate_limit_per_agent,
                burst: self.rate_limit_burst,
            },
            limits: RequestLimits {
                max_messages: self.max_messages,
                max_body_bytes,
            },
            model_aliases: ModelAliases::new(self.model_aliases.clone())
                .context("invalid --model-alias")?,
            stream_ping_interval: Duration::from_secs(self.stream_ping_interval),
            drain_timeout: Duration::from_secs(self.swap_drain_timeout),
        })
    }

    /// --api-key values plus the key file's lines.
    fn all_api_keys(&self) -> anyhow::Result<Vec<ApiKey>> {
        let mut keys: Vec<ApiKey> = self
            .api_keys
            .iter()
            .map(|k| ApiKey::from(k.as_str()))
            .collect();
        if let Some(path) = &self.api_key_file {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read --api-key-file {}", path.display()))?;
            let from_file = semantic_server::auth::parse_key_file(&text)
                .with_context(|| format!("invalid --api-key-file {}", path.display()))?;
            if from_file.is_empty() {
                bail!("--api-key-file {} holds no key", path.display());
            }
            keys.extend(from_file);
        }
        Ok(keys)
    }
}
