//! Metrics and traces of the HTTP adapter.
//!
//! - [`prometheus`]: the process-wide Prometheus recorder behind every
//!   `metrics` call (engine, store and server) and `GET /metrics`;
//! - [`http`]: the per-request middleware: the `http request` span (parented
//!   on the caller's W3C `traceparent`) and the request counters;
//! - [`phases`]: a finished generation's phases as child spans, built from
//!   the timings the engine reports (the engine thread batches many requests
//!   per step, so no span is held open across it).
//!
//! Traces are exported only if the binary installs an OpenTelemetry layer;
//! otherwise the spans here cost a disabled-span check each.

pub mod http;
pub mod phases;
pub mod prometheus;
