//! Configuration from the environment, parsed and validated once at start-up.
//! Every variable is documented in docs/configuration.md.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use switchboard_core::vault::{MasterKey, Vault};

pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/switchboard";
pub const DEFAULT_TELEGRAM_API_URL: &str = "https://api.telegram.org";

#[derive(Clone, Debug)]
pub struct Config {
    pub database_url: String,
    /// A read replica for the log, the statistics and exports
    /// (`SWITCHBOARD_READ_DATABASE_URL`); without one they read the primary.
    pub read_database_url: Option<String>,
    pub db_pool_size: u32,
    pub bind: SocketAddr,
    /// A second address serving only `/metrics` (and `/healthz`): how `worker`
    /// processes, which have no web app, are scraped.
    pub metrics_bind: Option<SocketAddr>,
    pub public_url: String,
    pub telegram_api_url: String,
    pub data_dir: PathBuf,
    pub worker_concurrency: usize,
    pub json_logs: bool,
    /// Minimum spacing of messages to one chat, in milliseconds.
    pub chat_send_interval_ms: u64,
    /// Messages per second one bot may send, across every process (unless the bot has a
    /// rate of its own).
    pub bot_send_rate: u32,
    /// How many tenants' configurations and bots one process keeps in memory
    /// (`SWITCHBOARD_CACHE_TENANTS`, least recently used forgotten first).
    pub cached_tenants: usize,
    /// How long a worker holds the lease of a bot in polling mode between renewals (and
    /// so how long a crashed worker's bots go unpolled), in seconds.
    pub poll_lease_seconds: u64,
    /// How long a worker holds a chat whose message it is sending (`SWITCHBOARD_DELIVERY_LEASE_SECONDS`).
    pub delivery_lease_seconds: u64,
    /// The matcher's semantic stage (`SWITCHBOARD_SEMANTIC`, `SWITCHBOARD_EMBEDDINGS_DIR`,
    /// `SWITCHBOARD_MODELS_DIR`).
    pub semantic: SemanticStage,
    /// The web panel's settings (sign-up, sessions, OAuth providers, proxy).
    pub web: switchboard_web::WebSettings,
    /// `smtp://user:pass@host:587` to send mail; else the log and the dev mailbox.
    pub smtp_url: Option<String>,
    pub mail_from: String,
}

/// The matcher's semantic stage: on by default with the default model
/// ([`crate::models::default_model_dir`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SemanticStage {
    /// `SWITCHBOARD_SEMANTIC=off`: lexical matching only.
    Off,
    /// The model in `dir`. `required` when the directory was named
    /// (`SWITCHBOARD_EMBEDDINGS_DIR`): then a missing model stops start-up; the default
    /// directory without a model only warns (run `switchboard models fetch`) and the bot
    /// matches lexically.
    Model { dir: PathBuf, required: bool },
}

impl SemanticStage {
    pub fn from_env() -> anyhow::Result<Self> {
        Self::from_lookup(env)
    }

    /// From the variables `get` gives (non-empty values only).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        let on = match get("SWITCHBOARD_SEMANTIC").as_deref().map(str::trim) {
            None | Some("on") => true,
            Some("off") => false,
            Some(v) => bail!("SWITCHBOARD_SEMANTIC={v:?} must be on or off"),
        };
        Ok(match (on, get("SWITCHBOARD_EMBEDDINGS_DIR")) {
            (false, _) => SemanticStage::Off,
            (true, Some(dir)) => SemanticStage::Model {
                dir: PathBuf::from(dir),
                required: true,
            },
            (true, None) => SemanticStage::Model {
                dir: crate::models::models_dir_from(&get).join(crate::models::DEFAULT_MODEL),
                required: false,
            },
        })
    }
}

/// A variable's value, unset when empty or blank.
pub(crate) fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn env_parse<T: std::str::FromStr>(name: &str, default: T) -> anyhow::Result<T>
where
    T::Err: std::fmt::Display,
{
    match env(name) {
        Some(v) => v
            .trim()
            .parse()
            .map_err(|e| anyhow::anyhow!("{name}={v:?} is not valid: {e}")),
        None => Ok(default),
    }
}

impl Config {
    /// Defaults for running the platform inside another program (tests, benches): the
    /// given database, listener address and Bot API, nothing read from the environment.
    pub fn embedded(database_url: &str, bind: SocketAddr, telegram_api_url: &str) -> Self {
        let public_url = format!("http://{bind}");
        Self {
            database_url: database_url.to_string(),
            read_database_url: None,
            db_pool_size: 10,
            bind,
            metrics_bind: None,
            web: switchboard_web::WebSettings::new(public_url.clone()),
            public_url,
            telegram_api_url: telegram_api_url.to_string(),
            data_dir: std::env::temp_dir(),
            worker_concurrency: 64,
            json_logs: false,
            chat_send_interval_ms: 1000,
            bot_send_rate: 30,
            cached_tenants: 2000,
            poll_lease_seconds: 30,
            delivery_lease_seconds: 60,
            semantic: SemanticStage::Off,
            smtp_url: None,
            mail_from: "Switchboard <noreply@localhost>".into(),
        }
    }

    pub fn from_env() -> anyhow::Result<Self> {
        let bind: SocketAddr = env_parse("SWITCHBOARD_BIND", "127.0.0.1:8080".parse()?)?;
        let public_url = env("SWITCHBOARD_PUBLIC_URL").unwrap_or_else(|| format!("http://{bind}"));
        let public_url = public_url.trim_end_matches('/').to_string();
        url::Url::parse(&public_url)
            .with_context(|| format!("SWITCHBOARD_PUBLIC_URL={public_url:?} is not a URL"))?;
        let telegram_api_url = env("SWITCHBOARD_TELEGRAM_API_URL")
            .unwrap_or_else(|| DEFAULT_TELEGRAM_API_URL.to_string());
        url::Url::parse(&telegram_api_url).with_context(|| {
            format!("SWITCHBOARD_TELEGRAM_API_URL={telegram_api_url:?} is not a URL")
        })?;
        let log_format = env("SWITCHBOARD_LOG_FORMAT").unwrap_or_else(|| "text".into());
        if log_format != "text" && log_format != "json" {
            bail!("SWITCHBOARD_LOG_FORMAT must be text or json, not {log_format:?}");
        }
        Ok(Self {
            database_url: env("DATABASE_URL").unwrap_or_else(|| DEFAULT_DATABASE_URL.to_string()),
            read_database_url: env("SWITCHBOARD_READ_DATABASE_URL"),
            db_pool_size: env_parse("SWITCHBOARD_DB_POOL_SIZE", 20)?,
            bind,
            metrics_bind: env("SWITCHBOARD_METRICS_BIND")
                .map(|v| {
                    v.trim().parse().map_err(|e| {
                        anyhow::anyhow!("SWITCHBOARD_METRICS_BIND={v:?} is not valid: {e}")
                    })
                })
                .transpose()?,
            telegram_api_url,
            data_dir: env("SWITCHBOARD_DATA_DIR")
                .map_or_else(|| PathBuf::from(".data"), PathBuf::from),
            worker_concurrency: env_parse("SWITCHBOARD_WORKER_CONCURRENCY", 256)?,
            json_logs: log_format == "json",
            chat_send_interval_ms: env_parse("SWITCHBOARD_CHAT_SEND_INTERVAL_MS", 1000)?,
            bot_send_rate: env_parse("SWITCHBOARD_BOT_SEND_RATE", 30)?,
            cached_tenants: match env_parse("SWITCHBOARD_CACHE_TENANTS", 2000)? {
                n @ 1..=1_000_000 => n,
                n => bail!("SWITCHBOARD_CACHE_TENANTS={n} must be between 1 and 1000000"),
            },
            poll_lease_seconds: match env_parse("SWITCHBOARD_POLL_LEASE_SECONDS", 30)? {
                n @ 3..=600 => n,
                n => bail!("SWITCHBOARD_POLL_LEASE_SECONDS={n} must be between 3 and 600"),
            },
            delivery_lease_seconds: match env_parse("SWITCHBOARD_DELIVERY_LEASE_SECONDS", 60)? {
                n @ 5..=600 => n,
                n => bail!("SWITCHBOARD_DELIVERY_LEASE_SECONDS={n} must be between 5 and 600"),
            },
            semantic: SemanticStage::from_env()?,
            web: web_settings(&public_url)?,
            smtp_url: env("SWITCHBOARD_SMTP_URL"),
            mail_from: env("SWITCHBOARD_MAIL_FROM")
                .unwrap_or_else(|| "Switchboard <noreply@localhost>".into()),
            public_url,
        })
    }

    /// The job workers' settings.
    pub fn worker_config(&self) -> switchboard_jobs::WorkerConfig {
        switchboard_jobs::WorkerConfig {
            concurrency: self.worker_concurrency,
            poll: switchboard_jobs::polling::PollConfig {
                lease: std::time::Duration::from_secs(self.poll_lease_seconds),
            },
            ..Default::default()
        }
    }

    pub fn default_key_file(&self) -> PathBuf {
        self.data_dir.join("master.key")
    }

    /// The vault from `SWITCHBOARD_MASTER_KEY`, `SWITCHBOARD_MASTER_KEY_FILE`, or the
    /// local key file. With `create_local_key`, a missing local key file is created
    /// (0600) with a warning that production must supply its own key.
    pub fn vault(&self, create_local_key: bool) -> anyhow::Result<Vault> {
        let current = match (
            env("SWITCHBOARD_MASTER_KEY"),
            env("SWITCHBOARD_MASTER_KEY_FILE"),
        ) {
            (Some(_), Some(_)) => {
                bail!("set SWITCHBOARD_MASTER_KEY or SWITCHBOARD_MASTER_KEY_FILE, not both")
            }
            (Some(k), None) => MasterKey::from_base64(&k).context("SWITCHBOARD_MASTER_KEY")?,
            (None, Some(path)) => read_key_file(Path::new(&path))?,
            (None, None) => {
                let path = self.default_key_file();
                if path.exists() {
                    read_key_file(&path)?
                } else if create_local_key {
                    let key = create_key_file(&path)?;
                    tracing::warn!(
                        path = %path.display(),
                        "no master key configured: created a local key file. Production must set \
                         SWITCHBOARD_MASTER_KEY or SWITCHBOARD_MASTER_KEY_FILE (and back the key up: \
                         without it, stored bot tokens cannot be decrypted)"
                    );
                    key
                } else {
                    bail!(
                        "no master key: set SWITCHBOARD_MASTER_KEY or SWITCHBOARD_MASTER_KEY_FILE \
                         (or run `switchboard serve` once to create {})",
                        path.display()
                    )
                }
            }
        };
        let mut older = Vec::new();
        if let Some(list) = env("SWITCHBOARD_OLD_MASTER_KEYS") {
            for (i, k) in list
                .split(',')
                .map(str::trim)
                .filter(|k| !k.is_empty())
                .enumerate()
            {
                older.push(
                    MasterKey::from_base64(k)
                        .with_context(|| format!("SWITCHBOARD_OLD_MASTER_KEYS item {}", i + 1))?,
                );
            }
        }
        Ok(Vault::new(&current, &older))
    }
}

fn flag(name: &str, default: bool) -> anyhow::Result<bool> {
    match env(name).as_deref().map(str::to_ascii_lowercase).as_deref() {
        None => Ok(default),
        Some("1" | "true" | "yes" | "on") => Ok(true),
        Some("0" | "false" | "no" | "off") => Ok(false),
        Some(other) => bail!("{name}={other:?} must be true or false"),
    }
}

/// The web panel's settings: sign-up, proxy trust, session lifetimes, OAuth providers,
/// the metrics token.
fn web_settings(public_url: &str) -> anyhow::Result<switchboard_web::WebSettings> {
    use switchboard_web::oauth::{OAuthProvider, ProviderKind};
    let mut web = switchboard_web::WebSettings::new(public_url);
    web.allow_signup = flag("SWITCHBOARD_ALLOW_SIGNUP", true)?;
    web.trust_proxy = flag("SWITCHBOARD_TRUST_PROXY", false)?;
    web.session_idle = std::time::Duration::from_secs(
        60 * env_parse::<u64>("SWITCHBOARD_SESSION_IDLE_MINUTES", 720)?,
    );
    web.session_max_age = std::time::Duration::from_secs(
        86_400 * env_parse::<u64>("SWITCHBOARD_SESSION_MAX_DAYS", 7)?,
    );
    web.metrics_token = env("SWITCHBOARD_METRICS_TOKEN")
        .map(|token| switchboard_web::metrics::MetricsToken::new(token.trim()));
    let pair = |id: &str| -> Option<(String, String)> {
        Some((
            env(&format!("SWITCHBOARD_OAUTH_{id}_CLIENT_ID"))?,
            env(&format!("SWITCHBOARD_OAUTH_{id}_CLIENT_SECRET")).unwrap_or_default(),
        ))
    };
    if let Some((id, secret)) = pair("GOOGLE") {
        web.oauth.push(OAuthProvider::google(id, secret));
    }
    if let Some((id, secret)) = pair("GITHUB") {
        web.oauth.push(OAuthProvider::github(id, secret));
    }
    if let Some((id, secret)) = pair("SSO") {
        let need = |k: &str| {
            env(&format!("SWITCHBOARD_OAUTH_SSO_{k}")).with_context(|| {
                format!(
                    "SWITCHBOARD_OAUTH_SSO_{k} is required with SWITCHBOARD_OAUTH_SSO_CLIENT_ID"
                )
            })
        };
        web.oauth.push(OAuthProvider {
            id: "sso".into(),
            label: env("SWITCHBOARD_OAUTH_SSO_NAME").unwrap_or_else(|| "SSO".into()),
            kind: ProviderKind::Oidc,
            auth_url: need("AUTH_URL")?,
            token_url: need("TOKEN_URL")?,
            userinfo_url: need("USERINFO_URL")?,
            client_id: id,
            client_secret: secret,
            scopes: env("SWITCHBOARD_OAUTH_SSO_SCOPES")
                .unwrap_or_else(|| "openid email profile".into())
                .split_whitespace()
                .map(String::from)
                .collect(),
        });
    }
    Ok(web)
}

fn read_key_file(path: &Path) -> anyhow::Result<MasterKey> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the master key file {}", path.display()))?;
    MasterKey::from_base64(&text).with_context(|| format!("master key file {}", path.display()))
}

fn create_key_file(path: &Path) -> anyhow::Result<MasterKey> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let key = MasterKey::generate();
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create the key file {}", path.display()))?;
    file.write_all(key.to_base64().as_bytes())?;
    file.write_all(b"\n")?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stage(vars: &[(&str, &str)]) -> anyhow::Result<SemanticStage> {
        SemanticStage::from_lookup(|name| {
            vars.iter()
                .find(|(k, v)| *k == name && !v.trim().is_empty())
                .map(|(_, v)| v.to_string())
        })
    }

    #[test]
    fn the_semantic_stage_is_on_by_default_with_the_default_model() {
        assert_eq!(
            stage(&[("HOME", "/home/op")]).unwrap(),
            SemanticStage::Model {
                dir: PathBuf::from("/home/op/.cache/switchboard/models/multilingual-e5-small"),
                required: false
            }
        );
        assert_eq!(
            stage(&[("SWITCHBOARD_MODELS_DIR", "/srv/models"), ("HOME", "/h")]).unwrap(),
            SemanticStage::Model {
                dir: PathBuf::from("/srv/models/multilingual-e5-small"),
                required: false
            }
        );
        assert_eq!(
            stage(&[
                ("XDG_CACHE_HOME", "/var/cache"),
                ("SWITCHBOARD_SEMANTIC", "on")
            ])
            .unwrap(),
            SemanticStage::Model {
                dir: PathBuf::from("/var/cache/switchboard/models/multilingual-e5-small"),
                required: false
            }
        );
        // A directory named explicitly must hold a model.
        assert_eq!(
            stage(&[("SWITCHBOARD_EMBEDDINGS_DIR", "/m")]).unwrap(),
            SemanticStage::Model {
                dir: PathBuf::from("/m"),
                required: true
            }
        );
        // Off wins over a directory; empty is the default; anything else is refused.
        assert_eq!(
            stage(&[
                ("SWITCHBOARD_SEMANTIC", "off"),
                ("SWITCHBOARD_EMBEDDINGS_DIR", "/m")
            ])
            .unwrap(),
            SemanticStage::Off
        );
        assert!(matches!(
            stage(&[("SWITCHBOARD_SEMANTIC", "")]).unwrap(),
            SemanticStage::Model {
                required: false,
                ..
            }
        ));
        let err = stage(&[("SWITCHBOARD_SEMANTIC", "yes")]).unwrap_err();
        assert!(err.to_string().contains("must be on or off"), "{err}");
    }
}
