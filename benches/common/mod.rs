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
