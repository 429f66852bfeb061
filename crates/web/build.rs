//! Embeds the templates (minijinja-embed) and the static assets (a generated table of
//! `include_bytes!` with a content hash per file for cache busting) into the binary.

use std::collections::hash_map::DefaultHasher;
use std::fmt::Write;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.flatten().map(|e| e.path()).collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            walk(&path, out);
        } else {
            out.push(path);
        }
    }
}

fn content_type(path: &Path) -> &'static str {
    match path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default()
    {
        "css" => "text/css; charset=utf-8",
        "js" => "text/javascript; charset=utf-8",
        "woff2" => "font/woff2",
        "woff" => "font/woff",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "json" => "application/json",
        "txt" | "md" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

fn main() {
    minijinja_embed::embed_templates!("../../templates");

    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../static");
    println!("cargo:rerun-if-changed={}", root.display());
    let mut files = Vec::new();
    walk(&root, &mut files);
    let mut code = String::from("pub static FILES: &[StaticFile] = &[\n");
    for file in files {
        println!("cargo:rerun-if-changed={}", file.display());
        let rel = file
            .strip_prefix(&root)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        if rel.ends_with("README.md") || rel.ends_with("LICENSE") {
            continue;
        }
        let bytes = std::fs::read(&file).unwrap();
        let mut h = DefaultHasher::new();
        bytes.hash(&mut h);
        let abs = file.canonicalize().unwrap();
        writeln!(
            code,
            "    StaticFile {{ path: {rel:?}, bytes: include_bytes!({abs:?}), content_type: {:?}, hash: \"{:016x}\" }},",
            content_type(&file),
            h.finish()
        )
        .unwrap();
    }
    code.push_str("];\n");
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("static_files.rs");
    std::fs::write(out, code).unwrap();
}
