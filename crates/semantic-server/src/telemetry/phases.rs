//! A generation's phases as child spans of its request span.
//!
//! The engine reports offsets from submission ([`Timings`]); when the
//! `Finished` event passes, the phases become spans with explicit start and
//! end times: `queue wait`, `cache lookup/restore`, `prefill`, `decode`, and
//! later `persist` once the engine has handed the agent's turn to the disk
//! writer.

use std::time::{Duration, SystemTime};

use opentelemetry::trace::{Span as _, TraceContextExt, Tracer};
use opentelemetry::{Context, KeyValue};
use semantic_domain::generation::Timings;
use semantic_domain::Usage;
use semantic_engine::{GenerationStream, PersistReport};
use tokio::sync::oneshot;
use tracing_opentelemetry::OpenTelemetrySpanExt;

const TRACER: &str = "semantic";
/// How long a finished request waits to hear that its turn was persisted;
/// an agent whose turn is taken over by its next one never hears.
const PERSIST_WAIT: Duration = Duration::from_secs(60);

/// Trace `generation`'s phases under the current span, if that span is
/// exported. Call right after submitting.
pub fn trace(generation: &mut GenerationStream) {
    let parent = tracing::Span::current().context();
    if !parent.span().span_context().is_sampled() {
        return;
    }
    let submitted = SystemTime::now();
    let persisted = generation.take_persist_report();
    generation.on_finish(Box::new(move |usage, timings| {
        record(&parent, submitted, usage, timings);
        if let Some(persisted) = persisted {
            await_persist(parent, persisted);
        }
    }));
}

fn record(parent: &Context, submitted: SystemTime, usage: &Usage, timings: &Timings) {
    let at = |secs: f64| submitted + Duration::from_secs_f64(secs.max(0.0));
    let admitted = timings.queue - timings.restore;
    let first_token = if usage.completion_tokens > 0 {
        timings.first_token
    } else {
        timings.total
    };
    let cache = vec![
        KeyValue::new("semantic.cache_source", usage.cache_source.as_str()),
        KeyValue::new("semantic.cached_tokens", i64::from(usage.cached_tokens)),
    ];
    let prefill = vec![
        KeyValue::new("semantic.prompt_tokens", i64::from(usage.prompt_tokens)),
        KeyValue::new(
            "semantic.prefilled_tokens",
            i64::from(usage.prompt_tokens - usage.cached_tokens.min(usage.prompt_tokens)),
        ),
    ];
    let decode = vec![KeyValue::new(
        "semantic.completion_tokens",
        i64::from(usage.completion_tokens),
    )];
    span(parent, "queue wait", at(0.0), at(admitted), Vec::new());
    span(
        parent,
        "cache lookup/restore",
        at(admitted),
        at(timings.queue),
        cache,
    );
    span(
        parent,
        "prefill",
        at(timings.queue),
        at(first_token),
        prefill,
    );
    span(parent, "decode", at(first_token), at(timings.total), decode);
}

/// Wait (off the request's task, bounded) for the persist report.
fn await_persist(parent: Context, persisted: oneshot::Receiver<PersistReport>) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    runtime.spawn(async move {
        if let Ok(Ok(report)) = tokio::time::timeout(PERSIST_WAIT, persisted).await {
            let start = SystemTime::now() - report.started.elapsed();
            let bytes = i64::try_from(report.bytes).unwrap_or(i64::MAX);
            let attributes = vec![KeyValue::new("semantic.kv_bytes", bytes)];
            span(
                &parent,
                "persist",
                start,
                start + report.duration,
                attributes,
            );
        }
    });
}

fn span(
    parent: &Context,
    name: &'static str,
    start: SystemTime,
    end: SystemTime,
    attributes: Vec<KeyValue>,
) {
    let tracer = opentelemetry::global::tracer(TRACER);
    let mut span = tracer
        .span_builder(name)
        .with_start_time(start)
        .with_attributes(attributes)
        .start_with_context(&tracer, parent);
    span.end_with_timestamp(end.max(start));
}
