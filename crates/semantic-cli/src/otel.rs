//! OpenTelemetry trace export (off unless an OTLP endpoint is configured):
//! an OTLP exporter over HTTP/protobuf or gRPC, a parent-based ratio
//! sampler, the W3C trace-context propagator, and a `tracing` layer that
//! exports only the server's request spans (`semantic_server::telemetry`).

use std::time::Duration;

use anyhow::Context;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use opentelemetry_sdk::Resource;
use tracing::Level;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::{Layer, Registry};

use crate::cli::{OtlpProtocol, TraceArgs};

/// The standard variable honoured when `--otlp-endpoint` is not given.
const STANDARD_ENDPOINT_VAR: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";
/// Where the request spans and their phase spans are created.
const TRACED_TARGET: &str = "semantic_server::telemetry";

/// A `tracing` layer for the registry the logging set-up builds.
pub type BoxedLayer = Box<dyn Layer<Registry> + Send + Sync>;

/// Keeps the exporter running; dropping it flushes what is queued.
pub struct TraceExport {
    provider: SdkTracerProvider,
    /// The gRPC client's I/O runs here; unused for HTTP.
    _runtime: Option<tokio::runtime::Runtime>,
}

impl TraceExport {
    /// Start exporting if an endpoint is configured; `None` otherwise.
    pub fn start(args: &TraceArgs) -> anyhow::Result<Option<(Self, BoxedLayer)>> {
        let endpoint = args
            .otlp_endpoint
            .clone()
            .or_else(|| std::env::var(STANDARD_ENDPOINT_VAR).ok())
            .filter(|e| !e.is_empty());
        let Some(endpoint) = endpoint else {
            return Ok(None);
        };
        if !(0.0..=1.0).contains(&args.trace_sample_ratio) {
            anyhow::bail!(
                "--trace-sample-ratio must be within 0..=1, got {}",
                args.trace_sample_ratio
            );
        }
        let (exporter, runtime) = exporter(&endpoint, args.otlp_protocol)?;
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
                args.trace_sample_ratio,
            ))))
            .with_resource(Resource::builder().with_service_name("semantic").build())
            .build();
        opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
        opentelemetry::global::set_tracer_provider(provider.clone());
        let layer = tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("semantic"))
            .with_filter(Targets::new().with_target(TRACED_TARGET, Level::TRACE));
        let export = Self {
            provider,
            _runtime: runtime,
        };
        Ok(Some((export, Box::new(layer))))
    }
}

impl Drop for TraceExport {
    fn drop(&mut self) {
        if let Err(e) = self.provider.shutdown_with_timeout(Duration::from_secs(5)) {
            eprintln!("warning: cannot flush traces: {e}");
        }
    }
}

type Exporter = (
    opentelemetry_otlp::SpanExporter,
    Option<tokio::runtime::Runtime>,
);

fn exporter(endpoint: &str, protocol: OtlpProtocol) -> anyhow::Result<Exporter> {
    match protocol {
        OtlpProtocol::Http => {
            let exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_protocol(Protocol::HttpBinary)
                .with_endpoint(http_traces_url(endpoint))
                .build()
                .context("cannot set up the OTLP/HTTP exporter (--otlp-endpoint)")?;
            Ok((exporter, None))
        }
        OtlpProtocol::Grpc => {
            // tonic's channel is driven by a Tokio runtime; give it a small
            // one of its own, so export never competes with request tasks
            // and works before the server's runtime exists.
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("otlp-grpc")
                .enable_all()
                .build()
                .context("cannot start the OTLP/gRPC runtime")?;
            let exporter = runtime
                .block_on(async {
                    opentelemetry_otlp::SpanExporter::builder()
                        .with_tonic()
                        .with_endpoint(endpoint)
                        .build()
                })
                .context("cannot set up the OTLP/gRPC exporter (--otlp-endpoint)")?;
            Ok((exporter, Some(runtime)))
        }
    }
}

/// An OTLP/HTTP endpoint is a base URL (as `OTEL_EXPORTER_OTLP_ENDPOINT`);
/// traces go to its `/v1/traces`, unless the URL already names that path.
fn http_traces_url(endpoint: &str) -> String {
    let base = endpoint.trim_end_matches('/');
    if base.ends_with("/v1/traces") {
        base.to_owned()
    } else {
        format!("{base}/v1/traces")
    }
}

#[cfg(test)]
mod tests {
    use super::http_traces_url;

    #[test]
    fn http_endpoint_is_a_base_url() {
        assert_eq!(
            http_traces_url("http://collector:4318"),
            "http://collector:4318/v1/traces"
        );
        assert_eq!(
            http_traces_url("http://collector:4318/"),
            "http://collector:4318/v1/traces"
        );
        assert_eq!(
            http_traces_url("http://c:4318/v1/traces"),
            "http://c:4318/v1/traces"
        );
    }
}
