//! Trace export end to end: `semantic serve --otlp-endpoint` sends its spans
//! over OTLP/HTTP to a receiver run by this test, which decodes the real
//! protobuf. A request that carries a W3C `traceparent` must come back as a
//! span tree in the caller's trace: `http request` with its phases as
//! children.

#![allow(clippy::unwrap_used)] // a test: a failed unwrap is a failed test

mod support;
use support::serve_process::Serve;

use std::collections::HashMap;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use axum::Router;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use serde_json::json;
use tokio::sync::mpsc;

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";
const PHASES: [&str; 5] = [
    "queue wait",
    "cache lookup/restore",
    "prefill",
    "decode",
    "persist",
];

/// An OTLP/HTTP trace receiver on a loopback port: every span it is sent
/// arrives on the returned channel.
async fn receiver() -> (u16, mpsc::UnboundedReceiver<Span>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let app = Router::new()
        .route("/v1/traces", post(export))
        .with_state(tx);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (port, rx)
}

async fn export(State(spans): State<mpsc::UnboundedSender<Span>>, body: Bytes) -> Vec<u8> {
    let request = ExportTraceServiceRequest::decode(body).expect("a valid OTLP export");
    for span in request
        .resource_spans
        .into_iter()
        .flat_map(|r| r.scope_spans)
        .flat_map(|s| s.spans)
    {
        let _ = spans.send(span);
    }
    ExportTraceServiceResponse::default().encode_to_vec()
}

async fn serve(cache: &std::path::Path, otlp: &str, protocol: &str) -> Serve {
    let args = [
        "--context-tokens",
        "2048",
        "--otlp-endpoint",
        otlp,
        "--otlp-protocol",
        protocol,
        "--trace-sample-ratio",
        "1.0",
    ];
    // Export every 100 ms instead of every 5 s.
    Serve::start_with_env(cache, &args, &[("OTEL_BSP_SCHEDULE_DELAY", "100")]).await
}

/// The received tree, for `--nocapture` readers.
fn print_tree(spans: &HashMap<String, Span>) {
    let mut sorted: Vec<&Span> = spans.values().collect();
    sorted.sort_by_key(|s| s.start_time_unix_nano);
    for s in sorted {
        let ms = (s.end_time_unix_nano - s.start_time_unix_nano) as f64 / 1e6;
        println!(
            "{:<22} trace={} span={} parent={} {ms:.2} ms",
            s.name,
            hex(&s.trace_id),
            hex(&s.span_id),
            hex(&s.parent_span_id)
        );
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Collect spans of `trace` until `done` holds, for at most 60 s.
async fn spans_of(
    rx: &mut mpsc::UnboundedReceiver<Span>,
    trace: &str,
    done: impl Fn(&HashMap<String, Span>) -> bool,
) -> HashMap<String, Span> {
    let mut spans = HashMap::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !done(&spans) {
        let span = tokio::time::timeout_at(deadline, rx.recv())
            .await
            .unwrap_or_else(|_| panic!("spans missing; got {:?}", spans.keys()))
            .expect("receiver open");
        if hex(&span.trace_id) == trace {
            spans.insert(span.name.clone(), span);
        }
    }
    spans
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_traced_request_exports_its_span_tree() {
    let (otlp_port, mut rx) = receiver().await;
    let cache = tempfile::tempdir().unwrap();
    let endpoint = format!("http://127.0.0.1:{otlp_port}");
    let server = serve(cache.path(), &endpoint, "http").await;

    let response = reqwest::Client::new()
        .post(format!(
            "http://127.0.0.1:{}/v1/chat/completions",
            server.port
        ))
        .header("traceparent", format!("00-{TRACE_ID}-{CALLER_SPAN}-01"))
        .header("X-Agent-ID", "traced-agent")
        .json(&json!({
            "model": "default",
            "messages": [{"role": "user", "content": "Say hello."}],
            "max_tokens": 4,
            "temperature": 0,
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    let spans = spans_of(&mut rx, TRACE_ID, |s| {
        s.contains_key("http request") && PHASES.iter().all(|p| s.contains_key(*p))
    })
    .await;
    print_tree(&spans);
    let request = &spans["http request"];
    assert_eq!(hex(&request.parent_span_id), CALLER_SPAN);
    let attribute = |span: &Span, key: &str| {
        span.attributes
            .iter()
            .find(|a| a.key == key)
            .and_then(|a| a.value.clone())
            .and_then(|v| v.value)
    };
    assert!(
        format!("{:?}", attribute(request, "http.route")).contains("/v1/chat/completions"),
        "{:?}",
        request.attributes
    );
    let mut previous_end = request.start_time_unix_nano;
    for phase in PHASES {
        let span = &spans[phase];
        assert_eq!(span.parent_span_id, request.span_id, "{phase}");
        assert!(
            span.start_time_unix_nano <= span.end_time_unix_nano,
            "{phase}"
        );
        if phase != "persist" {
            // The request's phases follow one another inside it.
            assert!(
                span.start_time_unix_nano + 1_000_000 >= previous_end,
                "{phase}"
            );
            assert!(span.end_time_unix_nano <= request.end_time_unix_nano + 1_000_000);
            previous_end = span.end_time_unix_nano;
        }
    }
    assert!(format!(
        "{:?}",
        attribute(&spans["cache lookup/restore"], "semantic.cache_source")
    )
    .contains("cold"));

    // A request without `traceparent` starts its own trace (ratio 1.0).
    let models = reqwest::get(format!("http://127.0.0.1:{}/v1/models", server.port))
        .await
        .unwrap();
    assert_eq!(models.status(), 200);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let span = tokio::time::timeout_at(deadline, rx.recv())
            .await
            .expect("a root span for /v1/models")
            .unwrap();
        let route = format!("{:?}", attribute(&span, "http.route"));
        if span.name == "http request" && route.contains("/v1/models") {
            assert!(span.parent_span_id.is_empty());
            assert_ne!(hex(&span.trace_id), TRACE_ID);
            break;
        }
    }
}

/// gRPC smoke: with `--otlp-protocol grpc` the exporter opens an HTTP/2
/// connection to the collector and starts exporting. (No gRPC server here:
/// the bytes on the wire are checked, not decoded.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_export_connects_to_the_collector() {
    use tokio::io::AsyncReadExt;

    let collector = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", collector.local_addr().unwrap());
    let cache = tempfile::tempdir().unwrap();
    let server = serve(cache.path(), &endpoint, "grpc").await;
    let models = reqwest::get(format!("http://127.0.0.1:{}/v1/models", server.port))
        .await
        .unwrap();
    assert_eq!(models.status(), 200);
    let (mut stream, _) = tokio::time::timeout(Duration::from_secs(60), collector.accept())
        .await
        .expect("the exporter connects")
        .unwrap();
    let mut preface = [0u8; 24];
    tokio::time::timeout(Duration::from_secs(30), stream.read_exact(&mut preface))
        .await
        .expect("the exporter speaks")
        .unwrap();
    assert_eq!(&preface, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
}
