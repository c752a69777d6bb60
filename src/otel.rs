//! Optional trace export (`[otel]`, off by default): the tracing spans the server makes
//! (one per HTTP request, from tracing-actix-web, with secrets redacted: src/access_log.rs)
//! go to an OpenTelemetry collector over OTLP HTTP/protobuf, through tracing-opentelemetry
//! and the OpenTelemetry SDK's batch processor (a thread of its own, a bounded queue).
//! Spans the queue cannot hold are dropped by the SDK, which reports how many at shutdown.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::trace::{BatchConfigBuilder, BatchSpanProcessor, SdkTracerProvider};
use serde::Deserialize;
use std::time::Duration;
use tracing_subscriber::registry::LookupSpan;

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct OtelSettings {
    /// Base URL of the collector's OTLP/HTTP receiver, e.g. "http://127.0.0.1:4318";
    /// spans go to `<endpoint>/v1/traces`. Empty: no export.
    pub endpoint: String,
    /// `service.name` of the exported spans.
    pub service_name: String,
    /// How often the batch processor sends what it holds, milliseconds.
    pub schedule_delay_ms: u64,
    /// Spans held for export at most; more are dropped.
    pub max_queue_spans: usize,
}

impl Default for OtelSettings {
    fn default() -> Self {
        Self {
            endpoint: String::new(),
            service_name: "dispatchd".into(),
            schedule_delay_ms: 5000,
            max_queue_spans: 2048,
        }
    }
}

impl OtelSettings {
    pub fn validate(&self) -> Result<(), String> {
        if self.endpoint.is_empty() {
            return Ok(());
        }
        if !(self.endpoint.starts_with("http://") || self.endpoint.starts_with("https://")) {
            return Err(format!(
                "otel.endpoint {:?} must be an http:// or https:// URL",
                self.endpoint
            ));
        }
        if self.schedule_delay_ms == 0 || self.max_queue_spans == 0 {
            return Err(
                "otel.schedule_delay_ms and otel.max_queue_spans must be at least 1".into(),
            );
        }
        Ok(())
    }

    /// `<endpoint>/v1/traces`, as OTEL_EXPORTER_OTLP_ENDPOINT is read.
    pub fn traces_url(&self) -> String {
        format!("{}/v1/traces", self.endpoint.trim_end_matches('/'))
    }
}

/// Sends the spans still queued when dropped (at the end of `main`).
pub struct OtelGuard(Option<SdkTracerProvider>);

impl OtelGuard {
    /// No export: nothing to send.
    pub fn off() -> Self {
        Self(None)
    }
}

impl Drop for OtelGuard {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            if let Err(e) = p.shutdown() {
                eprintln!("dispatchd: trace export did not finish: {e}");
            }
        }
    }
}

/// The tracing layer that exports spans, and the guard that flushes them; `None` when
/// `otel.endpoint` is empty.
pub fn layer<S>(
    s: &OtelSettings,
) -> Result<Option<(impl tracing_subscriber::Layer<S>, OtelGuard)>, String>
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
{
    if s.endpoint.is_empty() {
        return Ok(None);
    }
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(s.traces_url())
        .with_timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| format!("otel: {e}"))?;
    let batch = BatchConfigBuilder::default()
        .with_scheduled_delay(Duration::from_millis(s.schedule_delay_ms))
        .with_max_queue_size(s.max_queue_spans)
        .build();
    let processor = BatchSpanProcessor::builder(exporter)
        .with_batch_config(batch)
        .build();
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name(s.service_name.clone())
        .build();
    let provider = SdkTracerProvider::builder()
        .with_span_processor(processor)
        .with_resource(resource)
        .build();
    let tracer = provider.tracer("dispatchd");
    let layer = tracing_opentelemetry::layer().with_tracer(tracer);
    Ok(Some((layer, OtelGuard(Some(provider)))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn off_by_default_and_a_bad_endpoint_is_refused() {
        let s = OtelSettings::default();
        assert!(s.endpoint.is_empty() && s.validate().is_ok());
        let bad = OtelSettings {
            endpoint: "collector:4318".into(),
            ..Default::default()
        };
        assert!(bad.validate().is_err());
        let good = OtelSettings {
            endpoint: "http://127.0.0.1:4318/".into(),
            ..Default::default()
        };
        assert!(good.validate().is_ok());
        assert_eq!(good.traces_url(), "http://127.0.0.1:4318/v1/traces");
    }
}
