//! SIGTERM and SIGINT, counted: the first starts a graceful drain, the
//! second cuts the wait short (caches are still persisted).

use anyhow::Context;
use tokio::sync::watch;

/// How many shutdown signals have arrived so far.
pub struct Signals {
    count: watch::Receiver<u32>,
}

/// Start counting signals (on a background task).
pub fn listen() -> anyhow::Result<Signals> {
    let (tx, rx) = watch::channel(0u32);
    let mut stream = SignalStream::new()?;
    tokio::spawn(async move {
        loop {
            let name = stream.next().await;
            let n = *tx.borrow() + 1;
            tracing::info!(signal = name, count = n, "shutdown signal received");
            if tx.send(n).is_err() {
                return;
            }
        }
    });
    Ok(Signals { count: rx })
}

impl Signals {
    /// Resolves once at least one signal has arrived.
    pub async fn first(&mut self) {
        self.at_least(1).await;
    }

    /// Resolves once a second signal has arrived.
    pub async fn second(&mut self) {
        self.at_least(2).await;
    }

    async fn at_least(&mut self, n: u32) {
        if self.count.wait_for(|&c| c >= n).await.is_err() {
            // The counting task is gone; never resolve rather than fake a signal.
            std::future::pending::<()>().await;
        }
    }
}

#[cfg(unix)]
struct SignalStream {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

#[cfg(unix)]
impl SignalStream {
    fn new() -> anyhow::Result<Self> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Self {
            term: signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?,
            int: signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?,
        })
    }

    async fn next(&mut self) -> &'static str {
        tokio::select! {
            _ = self.term.recv() => "SIGTERM",
            _ = self.int.recv() => "SIGINT",
        }
    }
}

#[cfg(not(unix))]
struct SignalStream;

#[cfg(not(unix))]
impl SignalStream {
    fn new() -> anyhow::Result<Self> {
        Ok(Self)
    }

    async fn next(&mut self) -> &'static str {
        let _ = tokio::signal::ctrl_c().await;
        "Ctrl-C"
    }
}
