//! What every bench program shares: its command-line arguments and percentiles. (A
//! module of each bench, so not every bench uses every function.)
#![allow(dead_code)]

use std::str::FromStr;

/// The value after `name` on the command line, or `default`.
pub fn arg<T: FromStr>(name: &str, default: T) -> T {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// True under `cargo bench` (which passes `--bench`); `cargo test` runs the small version.
pub fn full_run() -> bool {
    std::env::args().any(|a| a == "--bench")
}

/// The `p` quantile of sorted values (the default value when there are none).
pub fn percentile<T: Copy + Default>(sorted: &[T], p: f64) -> T {
    if sorted.is_empty() {
        return T::default();
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// Runs the platform in this process on `listener` (a fresh master key; job workers when
/// `jobs`), until the bench ends.
pub fn serve(
    listener: tokio::net::TcpListener,
    config: switchboard::Config,
    pool: switchboard_db::PgPool,
    jobs: bool,
) {
    use switchboard_core::vault::{MasterKey, Vault};
    let telegram =
        switchboard::telegram(&config, &pool, Vault::new(&MasterKey::generate(), &[])).unwrap();
    tokio::spawn(switchboard::run(
        listener,
        config,
        pool,
        telegram,
        switchboard::ServeOptions { jobs },
        std::future::pending(),
    ));
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// The platform's `/metrics` text, served at `url`.
pub async fn metrics(http: &reqwest::Client, url: &str) -> String {
    http.get(url).send().await.unwrap().text().await.unwrap()
}

/// The value of the metric sample `name` (its name and labels as printed) in `metrics`.
pub fn metric<'a>(metrics: &'a str, name: &str) -> Option<&'a str> {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .map(str::trim)
}
