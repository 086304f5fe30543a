//! Prometheus metrics of one app instance, in a registry of its own: several apps in one
//! process (the tests) each count only their own requests.

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry,
    TextEncoder,
};

/// Seconds, from half a millisecond (a cached `/me`) to the 10 s argon2 queue bound.
const BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

pub struct Metrics {
    registry: Registry,
    /// `http_requests_total{route, method, status}`; `route` is the route's pattern, or
    /// `unmatched`, so that scanners cannot create a series per path they try.
    pub requests: IntCounterVec,
    pub latency: HistogramVec,
    /// `auth_logins_total{outcome}`: `success` or the error code.
    pub logins: IntCounterVec,
    /// `auth_refreshes_total{outcome}`: `rotated`, `in_grace`, `reused`, `revoked`, `expired`,
    /// `invalid`, `unavailable` or `error`.
    pub refreshes: IntCounterVec,
    /// `auth_mfa_total{outcome}`: `challenged` (a password step that asks for a code),
    /// `passed` and `recovery_used` (a login finished), `invalid_code`, `enrolled`,
    /// `disabled`, `regenerated`.
    pub mfa: IntCounterVec,
    /// `auth_rate_limited_total{route}`: answers 429.
    pub rate_limited: IntCounterVec,
    /// Password hashes waiting for an argon2 thread, and how long each waited.
    pub hash_queue: IntGauge,
    pub hash_wait: Histogram,
    /// `store_errors_total{store, kind}`: requests that failed on a store; `kind` is
    /// `unavailable` (503) or `failed` (500).
    pub store_errors: IntCounterVec,
    pub mail_sent: IntCounterVec,
    pub outbox_depth: IntGauge,
}

impl Metrics {
    pub fn new() -> Result<Self, String> {
        Self::build().map_err(|e| format!("metrics: {e}"))
    }

    fn build() -> prometheus::Result<Self> {
        let registry = Registry::new();
        let counter = |name: &str, help: &str, labels: &[&str]| {
            let counter = IntCounterVec::new(Opts::new(name, help), labels)?;
            registry.register(Box::new(counter.clone()))?;
            Ok::<_, prometheus::Error>(counter)
        };
        let requests = counter(
            "http_requests_total",
            "HTTP requests answered, by route pattern, method and status.",
            &["route", "method", "status"],
        )?;
        let logins = counter(
            "auth_logins_total",
            "Login attempts by outcome.",
            &["outcome"],
        )?;
        let refreshes = counter(
            "auth_refreshes_total",
            "Refresh attempts by outcome.",
            &["outcome"],
        )?;
        let mfa = counter(
            "auth_mfa_total",
            "Second-factor events by outcome.",
            &["outcome"],
        )?;
        let rate_limited = counter(
            "auth_rate_limited_total",
            "Requests refused with 429 by the login limiter, by route.",
            &["route"],
        )?;
        let store_errors = counter(
            "store_errors_total",
            "Requests that failed on a store, by store and kind (unavailable: 503, failed: 500).",
            &["store", "kind"],
        )?;
        let mail_sent = counter(
            "mail_sent_total",
            "Mail by kind and outcome (sent; failed: to be tried again; dropped: given up; \
             limited: not sent, over the per-address limit).",
            &["kind", "outcome"],
        )?;
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "http_request_duration_seconds",
                "Time from a request's arrival to its response, by route pattern, method and status.",
            )
            .buckets(BUCKETS.to_vec()),
            &["route", "method", "status"],
        )?;
        registry.register(Box::new(latency.clone()))?;
        let hash_queue = IntGauge::new(
            "argon2_queue_depth",
            "Password hashes waiting for an argon2 thread.",
        )?;
        registry.register(Box::new(hash_queue.clone()))?;
        let hash_wait = Histogram::with_opts(
            HistogramOpts::new(
                "argon2_queue_wait_seconds",
                "How long a password hash waited for an argon2 thread.",
            )
            .buckets(BUCKETS.to_vec()),
        )?;
        registry.register(Box::new(hash_wait.clone()))?;
        let outbox_depth = IntGauge::new(
            "mail_outbox_depth",
            "Messages waiting in the outbox (all instances), as this instance last counted them.",
        )?;
        registry.register(Box::new(outbox_depth.clone()))?;
        #[cfg(target_os = "linux")]
        registry.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))?;
        Ok(Metrics {
            registry,
            requests,
            latency,
            logins,
            refreshes,
            mfa,
            rate_limited,
            hash_queue,
            hash_wait,
            store_errors,
            mail_sent,
            outbox_depth,
        })
    }

    /// The Prometheus text format (version 0.0.4).
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::error!(error = %e, "metrics could not be encoded");
        }
        String::from_utf8(out).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::Metrics;

    #[test]
    fn every_family_is_rendered_once_used() {
        let metrics = Metrics::new().unwrap();
        metrics.logins.with_label_values(&["success"]).inc();
        metrics.hash_wait.observe(0.002);
        let text = metrics.render();
        assert!(
            text.contains("auth_logins_total{outcome=\"success\"} 1"),
            "{text}"
        );
        assert!(text.contains("argon2_queue_wait_seconds_count 1"), "{text}");
        assert!(text.contains("# TYPE argon2_queue_depth gauge"), "{text}");
    }
}
