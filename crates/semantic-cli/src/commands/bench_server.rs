//! The server an HTTP benchmark measures: a `semantic serve` it spawned
//! (which it can restart), or any OpenAI-compatible server at --base-url
//! (restarted, if at all, by a command the user gives).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use super::spawned_server::{SpawnOptions, SpawnedServer};
use crate::cli::BenchTarget;
use crate::openai_client::OpenAiClient;

/// Longest wait for a foreign server to answer again after its restart command.
const EXTERNAL_READY_TIMEOUT: Duration = Duration::from_secs(600);

pub enum BenchServer {
    Spawned(SpawnedServer),
    External {
        client: OpenAiClient,
        /// A shell command that restarts it.
        restart: Option<String>,
    },
}

/// The model a spawned server loads: `--model`, else the default, as an
/// absolute path (the child runs in another directory).
pub fn model_file(model: Option<&Path>) -> anyhow::Result<PathBuf> {
    let model = crate::model_path::resolve(model)?;
    std::fs::canonicalize(&model).with_context(|| format!("cannot resolve {}", model.display()))
}

impl BenchServer {
    /// Spawn `semantic serve` (with `extra_args`) unless `target` names a
    /// --base-url server.
    pub async fn open(
        target: &BenchTarget,
        extra_args: Vec<OsString>,
        restart_command: Option<String>,
        work_dir: &Path,
    ) -> anyhow::Result<Self> {
        if let Some(url) = &target.base_url {
            return Ok(Self::External {
                client: OpenAiClient::new(url, target.api_key.clone())?,
                restart: restart_command,
            });
        }
        if restart_command.is_some() {
            bail!("--restart-command is for a --base-url server; a spawned one is restarted by the bench");
        }
        let model = model_file(target.model.as_deref())?;
        eprintln!("starting `semantic serve` with {}", model.display());
        let server = SpawnedServer::start(SpawnOptions {
            model,
            kv_type: target.kv_type,
            work_dir: work_dir.to_owned(),
            extra_args,
        })
        .await?;
        Ok(Self::Spawned(server))
    }

    pub fn client(&self) -> &OpenAiClient {
        match self {
            Self::Spawned(server) => server.client(),
            Self::External { client, .. } => client,
        }
    }

    pub fn is_spawned(&self) -> bool {
        matches!(self, Self::Spawned(_))
    }

    /// The model name requests carry: --served-model, else "default" for
    /// ours, else the first id a foreign server lists.
    pub async fn served_model(&self, target: &BenchTarget) -> anyhow::Result<String> {
        match (&target.served_model, self) {
            (Some(name), _) => Ok(name.clone()),
            (None, Self::Spawned(_)) => Ok("default".to_owned()),
            (None, Self::External { client, .. }) => client.first_model().await,
        }
    }

    /// Restart the server and wait until it serves again.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        match self {
            Self::Spawned(server) => server.restart().await,
            Self::External { client, restart } => {
                let command = restart
                    .as_deref()
                    .context("restarting a --base-url server needs --restart-command")?;
                let shell = command.to_owned();
                let status = tokio::task::spawn_blocking(move || {
                    std::process::Command::new("sh")
                        .arg("-c")
                        .arg(shell)
                        .status()
                })
                .await
                .context("the restart command's task panicked")?
                .with_context(|| format!("cannot run --restart-command {command:?}"))?;
                if !status.success() {
                    bail!("--restart-command {command:?} exited with {status}");
                }
                wait_until_serving(client).await
            }
        }
    }

    pub async fn stop(&mut self) -> anyhow::Result<()> {
        match self {
            Self::Spawned(server) => server.stop().await,
            Self::External { .. } => Ok(()),
        }
    }
}

/// Poll `GET /v1/models` until it answers (a restarted foreign server
/// loads its model first).
async fn wait_until_serving(client: &OpenAiClient) -> anyhow::Result<()> {
    let deadline = Instant::now() + EXTERNAL_READY_TIMEOUT;
    while client.first_model().await.is_err() {
        if Instant::now() > deadline {
            bail!(
                "{} did not answer GET /v1/models within {EXTERNAL_READY_TIMEOUT:?} of its restart",
                client.base_url()
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    Ok(())
}
