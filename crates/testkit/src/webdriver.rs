//! A small W3C WebDriver client (enough to drive headless Chromium through chromedriver
//! in tests): sessions, navigation, elements by CSS, clicks, typing, text, screenshots.
//! chromedriver runs on localhost, so plain HTTP is all it needs.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine;
use serde_json::{json, Value};

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

#[derive(Debug, thiserror::Error)]
pub enum WebDriverError {
    #[error("webdriver HTTP error: {0}")]
    Http(#[from] reqwest::Error),
    #[error("webdriver: {error}: {message}")]
    Command { error: String, message: String },
}

type Result<T> = std::result::Result<T, WebDriverError>;

/// chromedriver and one browser session.
pub struct Chrome {
    http: reqwest::Client,
    session: String,
    base: String,
    driver: Child,
    _profile: PathBuf,
}

/// An element found on the page.
#[derive(Clone, Debug)]
pub struct Element(String);

impl Chrome {
    /// Starts chromedriver (`CHROMEDRIVER`, default /usr/bin/chromedriver) and headless
    /// Chromium (`CHROMIUM`, default /usr/bin/chromium).
    // The driver process is owned by `Chrome`, whose `Drop` kills and waits for it.
    #[allow(clippy::zombie_processes)]
    pub async fn start() -> Result<Self> {
        let chromedriver =
            std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".into());
        let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
        assert!(
            std::path::Path::new(&chromedriver).exists() && std::path::Path::new(&chromium).exists(),
            "browser tests need Chromium and chromedriver (Debian: apt-get install chromium chromium-driver)"
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("free port")
            .local_addr()
            .expect("addr")
            .port();
        // Its own process group, so that dropping `Chrome` also ends the browser
        // processes chromedriver started (they outlive chromedriver otherwise).
        let driver = Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("start chromedriver");
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()?;
        for _ in 0..100 {
            if http.get(format!("{base}/status")).send().await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        static SESSIONS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let profile = std::env::temp_dir().join(format!(
            "sb-chromium-{}-{}-{port}",
            std::process::id(),
            SESSIONS.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
        ));
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--disable-quic", "--no-first-run", "--disable-background-networking",
                         "--disable-component-update", "--disable-sync", "--window-size=1366,900",
                         format!("--user-data-dir={}", profile.display())],
            }
        }}});
        let mut chrome = Self {
            http,
            session: String::new(),
            base,
            driver,
            _profile: profile,
        };
        // A loaded machine sometimes fails to start the browser in time: try again.
        let mut attempt = 0;
        let v = loop {
            match chrome
                .send(reqwest::Method::POST, "/session", Some(caps.clone()))
                .await
            {
                Ok(v) => break v,
                Err(e) if attempt < 2 => {
                    attempt += 1;
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err(e) => return Err(e),
            }
        };
        chrome.session = v["sessionId"].as_str().unwrap_or_default().to_string();
        Ok(chrome)
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value> {
        let url = if path == "/session" {
            format!("{}{path}", self.base)
        } else {
            format!("{}/session/{}{path}", self.base, self.session)
        };
        let mut req = self.http.request(method, url);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let v: Value = req.send().await?.json().await?;
        let value = v.get("value").cloned().unwrap_or(Value::Null);
        if let Some(error) = value.get("error").and_then(Value::as_str) {
            return Err(WebDriverError::Command {
                error: error.to_string(),
                message: value
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
            });
        }
        Ok(value)
    }

    pub async fn goto(&self, url: &str) -> Result<()> {
        self.send(reqwest::Method::POST, "/url", Some(json!({"url": url})))
            .await
            .map(|_| ())
    }

    pub async fn find(&self, css: &str) -> Result<Element> {
        let v = self
            .send(
                reqwest::Method::POST,
                "/element",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await?;
        Ok(Element(v[ELEMENT].as_str().unwrap_or_default().to_string()))
    }

    /// Waits up to `timeout` for an element to appear.
    pub async fn wait_for(&self, css: &str, timeout: Duration) -> Result<Element> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match self.find(css).await {
                Ok(e) => return Ok(e),
                Err(e) if tokio::time::Instant::now() > deadline => return Err(e),
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    pub async fn click(&self, el: &Element) -> Result<()> {
        self.send(
            reqwest::Method::POST,
            &format!("/element/{}/click", el.0),
            Some(json!({})),
        )
        .await
        .map(|_| ())
    }

    pub async fn clear(&self, el: &Element) -> Result<()> {
        self.send(
            reqwest::Method::POST,
            &format!("/element/{}/clear", el.0),
            Some(json!({})),
        )
        .await
        .map(|_| ())
    }

    pub async fn type_text(&self, el: &Element, text: &str) -> Result<()> {
        self.send(
            reqwest::Method::POST,
            &format!("/element/{}/value", el.0),
            Some(json!({"text": text})),
        )
        .await
        .map(|_| ())
    }

    pub async fn text(&self, el: &Element) -> Result<String> {
        let v = self
            .send(
                reqwest::Method::GET,
                &format!("/element/{}/text", el.0),
                None,
            )
            .await?;
        Ok(v.as_str().unwrap_or_default().to_string())
    }

    /// Runs JavaScript in the page; `args` may include elements.
    pub async fn execute(&self, script: &str, args: Vec<Value>) -> Result<Value> {
        self.send(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({"script": script, "args": args})),
        )
        .await
    }

    pub fn element_arg(el: &Element) -> Value {
        json!({ ELEMENT: el.0 })
    }

    pub async fn screenshot(&self) -> Result<Vec<u8>> {
        let v = self.send(reqwest::Method::GET, "/screenshot", None).await?;
        Ok(base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap_or_default())
            .unwrap_or_default())
    }

    pub async fn delete_cookies(&self) -> Result<()> {
        self.send(reqwest::Method::DELETE, "/cookie", None)
            .await
            .map(|_| ())
    }

    pub async fn quit(&mut self) {
        let _ = self.send(reqwest::Method::DELETE, "", None).await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Drop for Chrome {
    fn drop(&mut self) {
        // The whole process group: chromedriver and the browser it started.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.driver.id())])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        let _ = std::fs::remove_dir_all(&self._profile);
    }
}
