//! Switchboard's Prometheus metrics: the registry of one process (no global state: it
//! lives in the shared `Telegram` side, so two apps in one process count apart), typed
//! methods the other crates record through, and the text exposition served at `/metrics`.
//!
//! Every metric is listed, with what it means, in docs/deployment.md ("Metrics").

use std::future::Future;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

/// The `Content-Type` of [`Metrics::encode`]'s output (Prometheus text format 0.0.4).
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// HTTP latency buckets, in seconds (Prometheus's usual defaults).
const HTTP_BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Bot decision buckets, in seconds: 10 µs to 250 ms (a command takes microseconds, a
/// 150-rule tenant matches a question in well under a millisecond, 10,000 rules take
/// tens of milliseconds).
const MATCHER_BUCKETS: [f64; 14] = [
    0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
    0.1, 0.25,
];
/// Updates per batch of the webhook's group commit (at most 32).
const BATCH_BUCKETS: [f64; 6] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    method: &'static str,
    /// The route template (`/telegram/{public_id}`), never the concrete path.
    route: String,
    /// `2xx`, `4xx`, …
    status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodLabels {
    method: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ApiErrorLabels {
    method: String,
    /// Telegram's `error_code` (`400`, `403`, `429`, `502`, …), or `network`, `timeout`,
    /// `bad_response` when there was no usable answer.
    code: String,
}

/// Why the webhook refused a delivery (nothing was stored).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rejection {
    /// No live bot has this public id (404).
    UnknownBot,
    /// The secret header is wrong or missing (401).
    BadSecret,
    /// The body is not a Telegram update (400).
    BadBody,
}

impl Rejection {
    pub const ALL: [Rejection; 3] = [
        Rejection::UnknownBot,
        Rejection::BadSecret,
        Rejection::BadBody,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Rejection::UnknownBot => "unknown_bot",
            Rejection::BadSecret => "bad_secret",
            Rejection::BadBody => "bad_body",
        }
    }
}

/// What the delivery queue looked like when the database was last asked.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct QueueSample {
    /// Outgoing messages `pending` or `sending`.
    pub undelivered: i64,
    /// Age of the oldest of them, in seconds (0 when there is none).
    pub oldest_undelivered_age_secs: f64,
    /// Each bot with a backlog (bots with nothing to send are left out).
    pub backlog: Vec<BotBacklog>,
}

/// One bot's delivery backlog.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BotBacklog {
    pub tenant: String,
    pub bot: String,
    /// Chats with messages to send.
    pub chats: i64,
    /// Of those, chats ready to be sent to now (not paced, not in flight).
    pub ready_chats: i64,
    /// How long the longest-waiting ready chat has waited, in seconds.
    pub oldest_ready_age_secs: f64,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BacklogLabels {
    tenant: String,
    bot: String,
}

/// The metrics of one process.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,

    http_requests: Family<HttpLabels, Counter>,
    http_duration: Family<HttpLabels, Histogram, fn() -> Histogram>,

    webhook_received: Counter,
    webhook_processed: Counter,
    webhook_ignored: Counter,
    webhook_duplicated: Counter,
    webhook_rejected: Family<ReasonLabels, Counter>,
    webhook_failed: Counter,
    webhook_set_aside: Counter,
    webhook_batch_size: Histogram,
    webhook_batches_failed: Counter,

    api_requests: Family<MethodLabels, Counter>,
    api_errors: Family<ApiErrorLabels, Counter>,

    deliveries_sent: Counter,
    deliveries_failed: Counter,
    deliveries_retried: Counter,

    matcher_duration: Histogram,
    matcher_encode_duration: Histogram,
    matcher_semantic_skipped: Counter,

    queue_undelivered: Gauge,
    cached_configs: Gauge,
    cached_bots: Gauge,
    queue_oldest_age: Gauge<f64, AtomicU64>,
    backlog_chats: Family<BacklogLabels, Gauge>,
    backlog_ready: Family<BacklogLabels, Gauge>,
    backlog_oldest_ready: Family<BacklogLabels, Gauge<f64, AtomicU64>>,
    /// When the queue gauges were last read from the database. Held across the query,
    /// so concurrent scrapes wait for one query instead of each running their own.
    queue_sampled_at: tokio::sync::Mutex<Option<Instant>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

fn http_histogram() -> Histogram {
    Histogram::new(HTTP_BUCKETS)
}

/// `2xx`, `4xx`, … for a status code.
pub fn status_class(status: u16) -> &'static str {
    match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("switchboard");
        let http_requests = Family::<HttpLabels, Counter>::default();
        let http_duration = Family::new_with_constructor(http_histogram as fn() -> Histogram);
        let webhook_received = Counter::default();
        let webhook_processed = Counter::default();
        let webhook_ignored = Counter::default();
        let webhook_duplicated = Counter::default();
        let webhook_rejected = Family::<ReasonLabels, Counter>::default();
        let webhook_failed = Counter::default();
        let webhook_set_aside = Counter::default();
        let webhook_batch_size = Histogram::new(BATCH_BUCKETS);
        let webhook_batches_failed = Counter::default();
        let api_requests = Family::<MethodLabels, Counter>::default();
        let api_errors = Family::<ApiErrorLabels, Counter>::default();
        let deliveries_sent = Counter::default();
        let deliveries_failed = Counter::default();
        let deliveries_retried = Counter::default();
        let matcher_duration = Histogram::new(MATCHER_BUCKETS);
        let matcher_encode_duration = Histogram::new(MATCHER_BUCKETS);
        let matcher_semantic_skipped = Counter::default();
        let queue_undelivered = Gauge::default();
        let cached_configs = Gauge::default();
        let cached_bots = Gauge::default();
        registry.register(
            "cached_tenant_configs",
            "Tenants whose bot configuration (and matcher index) this process holds in memory",
            cached_configs.clone(),
        );
        registry.register(
            "cached_bots",
            "Bots whose clients (with decrypted tokens) this process holds in memory",
            cached_bots.clone(),
        );
        let queue_oldest_age = Gauge::<f64, AtomicU64>::default();
        let backlog_chats = Family::<BacklogLabels, Gauge>::default();
        let backlog_ready = Family::<BacklogLabels, Gauge>::default();
        let backlog_oldest_ready = Family::<BacklogLabels, Gauge<f64, AtomicU64>>::default();

        // Every rejection reason is exported from the start (at 0), so rate() sees the
        // first one.
        for reason in Rejection::ALL {
            webhook_rejected.get_or_create_owned(&ReasonLabels {
                reason: reason.as_str(),
            });
        }

        registry.register(
            "http_requests",
            "HTTP requests answered, by method, route template and status class",
            http_requests.clone(),
        );
        registry.register_with_unit(
            "http_request_duration",
            "Time to answer an HTTP request, by method, route template and status class",
            Unit::Seconds,
            http_duration.clone(),
        );
        registry.register(
            "webhook_updates_received",
            "Deliveries POSTed to the Telegram webhook endpoint, whatever became of them",
            webhook_received.clone(),
        );
        registry.register(
            "webhook_updates_processed",
            "Webhook updates stored and acted on by the bot",
            webhook_processed.clone(),
        );
        registry.register(
            "webhook_updates_ignored",
            "Webhook updates stored and acknowledged but not for the bot to act on",
            webhook_ignored.clone(),
        );
        registry.register(
            "webhook_updates_duplicated",
            "Webhook updates Telegram delivered again: acknowledged, nothing done",
            webhook_duplicated.clone(),
        );
        registry.register(
            "webhook_updates_rejected",
            "Webhook deliveries refused without storing anything, by reason",
            webhook_rejected.clone(),
        );
        registry.register(
            "webhook_updates_failed",
            "Webhook deliveries answered 5xx (database trouble): Telegram delivers them again",
            webhook_failed.clone(),
        );
        registry.register(
            "webhook_updates_set_aside",
            "Updates that could not be processed (not Telegram's shape, data the database refuses): stored with the error and acknowledged",
            webhook_set_aside.clone(),
        );
        registry.register(
            "webhook_batch_size",
            "Updates written together in one transaction of the webhook's group commit",
            webhook_batch_size.clone(),
        );
        registry.register(
            "webhook_batches_failed",
            "Batches of updates that failed as a whole and were processed one by one",
            webhook_batches_failed.clone(),
        );
        registry.register(
            "telegram_api_requests",
            "Bot API requests made, by method",
            api_requests.clone(),
        );
        registry.register(
            "telegram_api_errors",
            "Bot API requests that failed, by method and error code",
            api_errors.clone(),
        );
        registry.register(
            "deliveries_sent",
            "Outgoing messages Telegram accepted",
            deliveries_sent.clone(),
        );
        registry.register(
            "deliveries_failed",
            "Outgoing messages given up on (blocked, chat not found, other refusals, too many attempts)",
            deliveries_failed.clone(),
        );
        registry.register(
            "deliveries_retried",
            "Delivery attempts that failed for now and were scheduled again (429, 5xx, network)",
            deliveries_retried.clone(),
        );
        registry.register_with_unit(
            "matcher_duration",
            "Time the bot took to decide on one update (matching against the answer rules)",
            Unit::Seconds,
            matcher_duration.clone(),
        );
        registry.register_with_unit(
            "matcher_encode_duration",
            "Time to encode one message for the matcher's semantic stage (the model's CPU work)",
            Unit::Seconds,
            matcher_encode_duration.clone(),
        );
        registry.register(
            "matcher_semantic_skipped",
            "Messages matched lexically only because every core was busy encoding (a flood)",
            matcher_semantic_skipped.clone(),
        );
        registry.register(
            "delivery_queue_depth",
            "Outgoing messages waiting to be delivered (pending or sending), all tenants",
            queue_undelivered.clone(),
        );
        registry.register_with_unit(
            "delivery_queue_oldest_age",
            "Age of the oldest outgoing message not yet delivered (0 when none)",
            Unit::Seconds,
            queue_oldest_age.clone(),
        );
        registry.register(
            "delivery_backlog_chats",
            "Chats with messages to send, per tenant and bot (bots with none are left out)",
            backlog_chats.clone(),
        );
        registry.register(
            "delivery_backlog_ready_chats",
            "Chats ready to be sent to now (not paced, not in flight), per tenant and bot",
            backlog_ready.clone(),
        );
        registry.register_with_unit(
            "delivery_backlog_oldest_ready_age",
            "How long the longest-waiting ready chat of a bot has waited, per tenant and bot",
            Unit::Seconds,
            backlog_oldest_ready.clone(),
        );

        Self {
            registry,
            http_requests,
            http_duration,
            webhook_received,
            webhook_processed,
            webhook_ignored,
            webhook_duplicated,
            webhook_rejected,
            webhook_failed,
            webhook_set_aside,
            webhook_batch_size,
            webhook_batches_failed,
            api_requests,
            api_errors,
            deliveries_sent,
            deliveries_failed,
            deliveries_retried,
            matcher_duration,
            matcher_encode_duration,
            matcher_semantic_skipped,
            queue_undelivered,
            cached_configs,
            cached_bots,
            queue_oldest_age,
            backlog_chats,
            backlog_ready,
            backlog_oldest_ready,
            queue_sampled_at: tokio::sync::Mutex::new(None),
        }
    }

    /// One answered HTTP request. `route` is the route template (bounded), never the
    /// concrete path; `method` one of a fixed set.
    pub fn http_request(&self, method: &'static str, route: &str, status: u16, elapsed: Duration) {
        let labels = HttpLabels {
            method,
            route: route.to_string(),
            status: status_class(status),
        };
        self.http_requests.get_or_create(&labels).inc();
        self.http_duration
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64());
    }

    pub fn webhook_received(&self) {
        self.webhook_received.inc();
    }

    pub fn webhook_processed(&self) {
        self.webhook_processed.inc();
    }

    /// A batch of the webhook's group commit was written (or tried).
    pub fn webhook_batch_observe(&self, updates: usize) {
        self.webhook_batch_size.observe(updates as f64);
    }

    pub fn webhook_batch_failed(&self) {
        self.webhook_batches_failed.inc();
    }

    pub fn webhook_ignored(&self) {
        self.webhook_ignored.inc();
    }

    pub fn webhook_duplicated(&self) {
        self.webhook_duplicated.inc();
    }

    pub fn webhook_rejected(&self, reason: Rejection) {
        self.webhook_rejected
            .get_or_create(&ReasonLabels {
                reason: reason.as_str(),
            })
            .inc();
    }

    pub fn webhook_failed(&self) {
        self.webhook_failed.inc();
    }

    /// An update stored aside as failed (and acknowledged).
    pub fn webhook_set_aside(&self) {
        self.webhook_set_aside.inc();
    }

    /// One Bot API request; `error` is its error code when it failed.
    pub fn telegram_api_call(&self, method: &str, error: Option<&str>) {
        self.api_requests
            .get_or_create(&MethodLabels {
                method: method.to_string(),
            })
            .inc();
        if let Some(code) = error {
            self.api_errors
                .get_or_create(&ApiErrorLabels {
                    method: method.to_string(),
                    code: code.to_string(),
                })
                .inc();
        }
    }

    pub fn delivery_sent(&self) {
        self.deliveries_sent.inc();
    }

    pub fn delivery_failed(&self) {
        self.deliveries_failed.inc();
    }

    pub fn delivery_retried(&self) {
        self.deliveries_retried.inc();
    }

    /// How long one bot decision took.
    pub fn matcher_observe(&self, elapsed: Duration) {
        self.matcher_duration.observe(elapsed.as_secs_f64());
    }

    /// How long encoding one message took.
    pub fn matcher_encode_observe(&self, elapsed: Duration) {
        self.matcher_encode_duration.observe(elapsed.as_secs_f64());
    }

    /// A message matched without its vector: no core was free to encode it in time.
    pub fn matcher_semantic_skipped(&self) {
        self.matcher_semantic_skipped.inc();
    }

    /// How many tenants' configurations and bots the caches hold (bounded by
    /// `SWITCHBOARD_CACHE_TENANTS`).
    pub fn set_cache_sizes(&self, configs: usize, bots: usize) {
        self.cached_configs.set(configs as i64);
        self.cached_bots.set(bots as i64);
    }

    pub fn set_queue(&self, sample: QueueSample) {
        self.queue_undelivered.set(sample.undelivered);
        self.queue_oldest_age
            .set(sample.oldest_undelivered_age_secs.max(0.0));
        // Bots whose backlog is gone disappear from the families.
        self.backlog_chats.clear();
        self.backlog_ready.clear();
        self.backlog_oldest_ready.clear();
        for b in sample.backlog {
            let labels = BacklogLabels {
                tenant: b.tenant,
                bot: b.bot,
            };
            self.backlog_chats.get_or_create(&labels).set(b.chats);
            self.backlog_ready.get_or_create(&labels).set(b.ready_chats);
            self.backlog_oldest_ready
                .get_or_create(&labels)
                .set(b.oldest_ready_age_secs.max(0.0));
        }
    }

    /// Re-reads the queue gauges with `sample` unless they were read less than
    /// `max_age` ago. Concurrent callers wait for one read. On an error the gauges keep
    /// their last values and the next call tries again.
    pub async fn refresh_queue<F, Fut, E>(&self, max_age: Duration, sample: F) -> Result<(), E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<QueueSample, E>>,
    {
        let mut sampled_at = self.queue_sampled_at.lock().await;
        if sampled_at.is_some_and(|at| at.elapsed() < max_age) {
            return Ok(());
        }
        let value = sample().await?;
        self.set_queue(value);
        *sampled_at = Some(Instant::now());
        Ok(())
    }

    /// Everything, in the Prometheus text exposition format ([`CONTENT_TYPE`]).
    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The value of the sample line `name` (with its labels, as encoded).
    fn value(text: &str, name: &str) -> Option<f64> {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
    }

    #[test]
    fn counters_and_histograms_are_encoded_with_their_labels() {
        let m = Metrics::new();
        m.webhook_received();
        m.webhook_received();
        m.webhook_duplicated();
        m.webhook_rejected(Rejection::BadSecret);
        m.http_request(
            "POST",
            "/telegram/{public_id}",
            200,
            Duration::from_millis(7),
        );
        m.http_request("GET", "/healthz", 503, Duration::from_millis(1));
        m.telegram_api_call("sendMessage", None);
        m.telegram_api_call("sendMessage", Some("403"));
        m.matcher_observe(Duration::from_micros(300));
        let text = m.encode();
        assert_eq!(
            value(&text, "switchboard_webhook_updates_received_total"),
            Some(2.0)
        );
        assert_eq!(
            value(&text, "switchboard_webhook_updates_duplicated_total"),
            Some(1.0)
        );
        assert_eq!(
            value(&text, "switchboard_webhook_updates_processed_total"),
            Some(0.0)
        );
        assert_eq!(
            value(
                &text,
                r#"switchboard_webhook_updates_rejected_total{reason="bad_secret"}"#
            ),
            Some(1.0)
        );
        assert_eq!(
            value(
                &text,
                r#"switchboard_webhook_updates_rejected_total{reason="unknown_bot"}"#
            ),
            Some(0.0),
            "every reason is exported from the start"
        );
        let http = r#"method="POST",route="/telegram/{public_id}",status="2xx""#;
        assert_eq!(
            value(&text, &format!("switchboard_http_requests_total{{{http}}}")),
            Some(1.0)
        );
        assert_eq!(
            value(
                &text,
                &format!("switchboard_http_request_duration_seconds_bucket{{{http},le=\"0.005\"}}")
            ),
            Some(0.0)
        );
        assert_eq!(
            value(
                &text,
                &format!("switchboard_http_request_duration_seconds_bucket{{{http},le=\"0.01\"}}")
            ),
            Some(1.0)
        );
        assert_eq!(
            value(
                &text,
                &format!("switchboard_http_request_duration_seconds_count{{{http}}}")
            ),
            Some(1.0)
        );
        assert_eq!(
            value(
                &text,
                r#"switchboard_http_requests_total{method="GET",route="/healthz",status="5xx"}"#
            ),
            Some(1.0)
        );
        assert_eq!(
            value(
                &text,
                r#"switchboard_telegram_api_requests_total{method="sendMessage"}"#
            ),
            Some(2.0)
        );
        assert_eq!(
            value(
                &text,
                r#"switchboard_telegram_api_errors_total{method="sendMessage",code="403"}"#
            ),
            Some(1.0)
        );
        assert_eq!(
            value(&text, "switchboard_matcher_duration_seconds_count"),
            Some(1.0)
        );
        assert_eq!(
            value(
                &text,
                r#"switchboard_matcher_duration_seconds_bucket{le="0.0005"}"#
            ),
            Some(1.0)
        );
        assert!(text.contains("# TYPE switchboard_http_request_duration_seconds histogram"));
        assert!(text.contains("# TYPE switchboard_webhook_updates_received_total counter"));
        assert!(!text.contains("# EOF"), "Prometheus text, not OpenMetrics");
        if std::env::var_os("SHOW_METRICS").is_some() {
            println!("{text}");
        }
    }

    #[test]
    fn status_classes() {
        assert_eq!(status_class(101), "1xx");
        assert_eq!(status_class(204), "2xx");
        assert_eq!(status_class(303), "3xx");
        assert_eq!(status_class(404), "4xx");
        assert_eq!(status_class(503), "5xx");
    }

    #[tokio::test]
    async fn queue_gauges_are_cached_for_max_age() {
        let m = Metrics::new();
        let calls = std::sync::atomic::AtomicU32::new(0);
        let sample = |n: i64| {
            calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            async move {
                Ok::<_, ()>(QueueSample {
                    undelivered: n,
                    oldest_undelivered_age_secs: 2.5,
                    backlog: vec![BotBacklog {
                        tenant: "t1".into(),
                        bot: "b1".into(),
                        chats: n,
                        ready_chats: 1,
                        oldest_ready_age_secs: 0.5,
                    }],
                })
            }
        };
        let long = Duration::from_secs(60);
        m.refresh_queue(long, || sample(3)).await.unwrap();
        m.refresh_queue(long, || sample(4)).await.unwrap();
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1);
        let text = m.encode();
        assert_eq!(value(&text, "switchboard_delivery_queue_depth"), Some(3.0));
        assert_eq!(
            value(&text, "switchboard_delivery_queue_oldest_age_seconds"),
            Some(2.5)
        );
        assert_eq!(
            value(
                &text,
                r#"switchboard_delivery_backlog_chats{tenant="t1",bot="b1"}"#
            ),
            Some(3.0)
        );
        assert_eq!(
            value(
                &text,
                r#"switchboard_delivery_backlog_oldest_ready_age_seconds{tenant="t1",bot="b1"}"#
            ),
            Some(0.5)
        );
        // Stale: asked again.
        m.refresh_queue(Duration::ZERO, || sample(5)).await.unwrap();
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 2);
        assert_eq!(
            value(&m.encode(), "switchboard_delivery_queue_depth"),
            Some(5.0)
        );
        // A failed read keeps the last values and does not count as a read.
        assert!(m
            .refresh_queue(Duration::ZERO, || async { Err::<QueueSample, _>("down") })
            .await
            .is_err());
        assert_eq!(
            value(&m.encode(), "switchboard_delivery_queue_depth"),
            Some(5.0)
        );
    }

    #[test]
    fn two_registries_count_apart() {
        let (a, b) = (Metrics::new(), Metrics::new());
        a.delivery_sent();
        assert_eq!(
            value(&a.encode(), "switchboard_deliveries_sent_total"),
            Some(1.0)
        );
        assert_eq!(
            value(&b.encode(), "switchboard_deliveries_sent_total"),
            Some(0.0)
        );
    }
}
