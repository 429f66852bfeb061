//! A thin Bot API transport over teloxide's payload and response types.
//!
//! We use teloxide for the Bot API's types, payloads and error classification, but send
//! requests ourselves: one shared HTTP client for every tenant's bot, a timeout per
//! request, no hidden sleeps (teloxide's own client pauses 10 s after a 5xx, which would
//! stall a delivery worker), and errors that never carry the token-bearing URL.

use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use switchboard_metrics::Metrics;
use teloxide::requests::Payload;
use teloxide::types::ResponseParameters;
use teloxide::ApiError;

/// What went wrong talking to the Bot API.
#[derive(Clone, Debug, thiserror::Error)]
pub enum TgError {
    /// 429: wait this many seconds.
    #[error("Telegram asks to wait {0} s (too many requests)")]
    RetryAfter(u32),
    /// Telegram refused the request (4xx); `kind` classifies the description.
    #[error("Telegram refused: {description}")]
    Api {
        code: u16,
        description: String,
        kind: ApiError,
    },
    /// A 5xx from the Bot API server.
    #[error("Telegram server error {0}")]
    Server(u16),
    #[error("could not reach the Bot API: {0}")]
    Network(String),
    #[error("the Bot API did not answer in time")]
    Timeout,
    #[error("unexpected answer from the Bot API: {0}")]
    BadResponse(String),
}

impl TgError {
    /// Errors worth retrying later (the same request may well succeed).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            TgError::RetryAfter(_) | TgError::Server(_) | TgError::Network(_) | TgError::Timeout
        )
    }

    /// The error's code for metrics: Telegram's `error_code`, or what kept us from
    /// getting one.
    pub fn code(&self) -> std::borrow::Cow<'static, str> {
        match self {
            TgError::RetryAfter(_) => "429".into(),
            TgError::Api { code, .. } | TgError::Server(code) => code.to_string().into(),
            TgError::Network(_) => "network".into(),
            TgError::Timeout => "timeout".into(),
            TgError::BadResponse(_) => "bad_response".into(),
        }
    }
}

#[derive(Deserialize)]
struct Envelope<T> {
    ok: bool,
    result: Option<T>,
    error_code: Option<u16>,
    description: Option<String>,
    parameters: Option<ResponseParameters>,
}

/// The Bot API at one base URL (Telegram's, a self-hosted server, or our fake).
#[derive(Clone, Debug)]
pub struct BotApi {
    http: reqwest::Client,
    base: url::Url,
    /// Where requests and their errors are counted (the process's registry).
    metrics: Option<Arc<Metrics>>,
}

impl BotApi {
    pub fn new(base: &str, timeout: Duration) -> Result<Self, String> {
        let base =
            url::Url::parse(base).map_err(|e| format!("invalid Bot API URL {base:?}: {e}"))?;
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(5))
            .pool_idle_timeout(Duration::from_secs(90))
            .user_agent(concat!("switchboard/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Self {
            http,
            base,
            metrics: None,
        })
    }

    /// Counts every request and its errors in `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    fn record<T>(&self, method: &str, result: &Result<T, TgError>) {
        if let Some(m) = &self.metrics {
            let code = result.as_ref().err().map(TgError::code);
            m.telegram_api_call(&api_method_name(method), code.as_deref());
        }
    }

    pub fn base_url(&self) -> &url::Url {
        &self.base
    }

    fn method_url(&self, token: &str, method: &str) -> url::Url {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .expect("the Bot API URL is a base URL")
            .pop_if_empty()
            .push(&format!("bot{token}"))
            .push(method);
        url
    }

    /// Calls a Bot API method with a teloxide payload.
    pub async fn call<P>(&self, token: &str, payload: &P) -> Result<P::Output, TgError>
    where
        P: Payload + Serialize,
        P::Output: DeserializeOwned,
    {
        let mut request = self
            .http
            .post(self.method_url(token, P::NAME))
            .json(payload);
        if let Some(hint) = payload.timeout_hint() {
            request = request.timeout(hint + Duration::from_secs(10));
        }
        let result = Self::response(request).await;
        self.record(P::NAME, &result);
        result
    }

    /// Calls a method with a JSON body, for answers wanted as they are (e.g. raw updates),
    /// waiting up to `timeout`.
    pub async fn call_json<B, T>(
        &self,
        token: &str,
        method: &str,
        body: &B,
        timeout: Duration,
    ) -> Result<T, TgError>
    where
        B: Serialize + ?Sized,
        T: DeserializeOwned,
    {
        let request = self
            .http
            .post(self.method_url(token, method))
            .json(body)
            .timeout(timeout);
        Self::response(request).await
    }

    /// Calls a method with a multipart form (uploading a file).
    pub async fn call_multipart<T: DeserializeOwned>(
        &self,
        token: &str,
        method: &str,
        form: reqwest::multipart::Form,
    ) -> Result<T, TgError> {
        let request = self
            .http
            .post(self.method_url(token, method))
            .multipart(form)
            .timeout(Duration::from_secs(120));
        let result = Self::response(request).await;
        self.record(method, &result);
        result
    }

    /// Downloads a file by the `file_path` `getFile` returned (at most `max` bytes).
    pub async fn download(
        &self,
        token: &str,
        file_path: &str,
        max: usize,
    ) -> Result<Vec<u8>, TgError> {
        let result = self.fetch_file(token, file_path, max).await;
        self.record("downloadFile", &result);
        result
    }

    async fn fetch_file(
        &self,
        token: &str,
        file_path: &str,
        max: usize,
    ) -> Result<Vec<u8>, TgError> {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .expect("the Bot API URL is a base URL")
            .pop_if_empty()
            .push("file")
            .push(&format!("bot{token}"))
            .extend(file_path.split('/'));
        let response = self.http.get(url).send().await.map_err(transport_error)?;
        let status = response.status().as_u16();
        if status >= 400 {
            return Err(if status >= 500 {
                TgError::Server(status)
            } else {
                TgError::BadResponse(format!("file download answered {status}"))
            });
        }
        if response.content_length().is_some_and(|n| n as usize > max) {
            return Err(TgError::BadResponse("the file is too large".into()));
        }
        let bytes = response.bytes().await.map_err(transport_error)?;
        if bytes.len() > max {
            return Err(TgError::BadResponse("the file is too large".into()));
        }
        Ok(bytes.to_vec())
    }

    async fn response<T: DeserializeOwned>(request: reqwest::RequestBuilder) -> Result<T, TgError> {
        let response = request.send().await.map_err(transport_error)?;
        let status = response.status().as_u16();
        let body = response.bytes().await.map_err(transport_error)?;
        let envelope: Envelope<T> = match serde_json::from_slice(&body) {
            Ok(e) => e,
            Err(_) if status >= 500 => return Err(TgError::Server(status)),
            Err(e) => return Err(TgError::BadResponse(format!("status {status}: {e}"))),
        };
        if envelope.ok {
            return envelope
                .result
                .ok_or_else(|| TgError::BadResponse("ok without a result".into()));
        }
        if let Some(ResponseParameters::RetryAfter(secs)) = envelope.parameters {
            return Err(TgError::RetryAfter(secs.seconds()));
        }
        let code = envelope.error_code.unwrap_or(status);
        if code >= 500 {
            return Err(TgError::Server(code));
        }
        let description = envelope.description.unwrap_or_default();
        let kind =
            serde_json::from_value::<ApiError>(serde_json::Value::String(description.clone()))
                .unwrap_or(ApiError::Unknown(description.clone()));
        Err(TgError::Api {
            code,
            description,
            kind,
        })
    }
}

/// The Bot API's spelling of a method (`sendMessage`): teloxide's payload names are
/// type names (`SendMessage`); Telegram accepts both.
fn api_method_name(name: &str) -> String {
    let mut chars = name.chars();
    match chars.next() {
        Some(first) => first.to_ascii_lowercase().to_string() + chars.as_str(),
        None => String::new(),
    }
}

fn transport_error(e: reqwest::Error) -> TgError {
    if e.is_timeout() {
        TgError::Timeout
    } else {
        // The URL holds the bot token: never let it into an error message.
        TgError::Network(e.without_url().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn method_urls_keep_a_base_path() {
        let api = BotApi::new("http://127.0.0.1:9/tg/", Duration::from_secs(1)).unwrap();
        assert_eq!(
            api.method_url("1:abc", "getMe").as_str(),
            "http://127.0.0.1:9/tg/bot1:abc/getMe"
        );
        let api = BotApi::new("https://api.telegram.org", Duration::from_secs(1)).unwrap();
        assert_eq!(
            api.method_url("1:abc", "sendMessage").as_str(),
            "https://api.telegram.org/bot1:abc/sendMessage"
        );
    }

    #[test]
    fn method_names_are_spelled_as_the_bot_api_does() {
        assert_eq!(
            api_method_name(teloxide::payloads::SendMessage::NAME),
            "sendMessage"
        );
        assert_eq!(api_method_name("sendPhoto"), "sendPhoto");
    }

    #[tokio::test]
    async fn errors_are_counted_by_method_and_code() {
        let metrics = Arc::new(Metrics::new());
        let api = BotApi::new("http://127.0.0.1:9", Duration::from_secs(2))
            .unwrap()
            .with_metrics(metrics.clone());
        api.call("1:x", &teloxide::payloads::GetMe::new())
            .await
            .unwrap_err();
        let text = metrics.encode();
        assert!(
            text.contains("switchboard_telegram_api_requests_total{method=\"getMe\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "switchboard_telegram_api_errors_total{method=\"getMe\",code=\"network\"} 1\n"
            ),
            "{text}"
        );
    }

    #[tokio::test]
    async fn network_errors_do_not_leak_the_token() {
        let api = BotApi::new("http://127.0.0.1:9", Duration::from_secs(2)).unwrap();
        let err = api
            .call("123:SECRETSECRET", &teloxide::payloads::GetMe::new())
            .await
            .unwrap_err();
        assert!(err.is_transient(), "{err:?}");
        assert!(!err.to_string().contains("SECRETSECRET"), "{err}");
    }
}
