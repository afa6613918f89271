//! The built `.wasm` files are components whose imports are only the
//! `wasi:*` interfaces Spin provides, and that export the `wasi:http`
//! incoming handler.
//!
//! Build them first (`cargo build --target wasm32-wasip2 --release -p
//! wq-queue -p wq-worker -p wq-echo -p wq-fetch`); when they are missing
//! the test says so and passes.

use std::path::{Path, PathBuf};
use wasmparser::{Encoding, Parser, Payload, Validator, WasmFeatures};

/// Interfaces (package and interface, without the version) Spin provides
/// to every component.
const PROVIDED: &[&str] = &[
    "wasi:cli/",
    "wasi:clocks/",
    "wasi:io/",
    "wasi:random/",
    "wasi:filesystem/",
    "wasi:sockets/",
    "wasi:http/",
    "wasi:keyvalue/",
    "wasi:config/",
];

/// Versions of the interfaces whose version matters to Spin 3.x and 4.x.
const VERSIONED: &[(&str, &str)] = &[
    ("wasi:keyvalue/", "@0.2.0-draft2"),
    ("wasi:config/", "@0.2.0-draft-2024-09-27"),
    ("wasi:http/", "@0.2."),
];

/// The components, and whether each may use the key-value store.
const COMPONENTS: &[(&str, bool)] = &[
    ("wq_queue", true),
    ("wq_worker", true),
    ("wq_echo", false),
    ("wq_fetch", false),
];

const HANDLER: &str = "wasi:http/incoming-handler@0.2.";

fn candidate_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Ok(dir) = std::env::var("CARGO_TARGET_DIR") {
        dirs.push(PathBuf::from(dir));
    }
    // `CARGO_TARGET_TMPDIR` is `<target dir>/tmp` of this build.
    if let Some(target) = Path::new(env!("CARGO_TARGET_TMPDIR")).parent() {
        dirs.push(target.to_path_buf());
    }
    dirs.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    let mut found: Vec<PathBuf> = Vec::new();
    for dir in dirs {
        let dir = dir.join("wasm32-wasip2").join("release");
        if !found.contains(&dir) {
            found.push(dir);
        }
    }
    found
}

fn find(name: &str) -> Option<PathBuf> {
    candidate_dirs()
        .into_iter()
        .map(|d| d.join(format!("{name}.wasm")))
        .find(|p| p.is_file())
}

/// Top-level imports and exports of a component.
struct Surface {
    imports: Vec<String>,
    exports: Vec<String>,
}

fn surface(bytes: &[u8]) -> Surface {
    let mut surface = Surface {
        imports: Vec::new(),
        exports: Vec::new(),
    };
    let mut depth = 0usize;
    let mut is_component = false;
    for payload in Parser::new(0).parse_all(bytes) {
        match payload.expect("the file parses") {
            Payload::Version { encoding, .. } if depth == 0 => {
                is_component = encoding == Encoding::Component;
            }
            Payload::ModuleSection { .. } | Payload::ComponentSection { .. } => depth += 1,
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ComponentImportSection(reader) if depth == 0 => {
                for import in reader {
                    surface
                        .imports
                        .push(import.expect("import parses").name.name.to_string());
                }
            }
            Payload::ComponentExportSection(reader) if depth == 0 => {
                for export in reader {
                    surface
                        .exports
                        .push(export.expect("export parses").name.name.to_string());
                }
            }
            _ => {}
        }
    }
    assert!(is_component, "not a component (a core module?)");
    surface
}

#[test]
fn built_components_import_only_what_spin_provides() {
    let mut missing = Vec::new();
    for &(name, uses_kv) in COMPONENTS {
        let Some(path) = find(name) else {
            missing.push(name);
            continue;
        };
        let bytes = std::fs::read(&path).expect("readable .wasm");
        Validator::new_with_features(WasmFeatures::all())
            .validate_all(&bytes)
            .unwrap_or_else(|e| panic!("{name}: invalid component: {e}"));
        let Surface { imports, exports } = surface(&bytes);
        for import in &imports {
            assert!(
                PROVIDED.iter().any(|p| import.starts_with(p)),
                "{name} imports {import}, which Spin does not provide"
            );
            for (prefix, version) in VERSIONED {
                if import.starts_with(prefix) {
                    assert!(
                        import.contains(version),
                        "{name} imports {import}; Spin provides {prefix}…{version}"
                    );
                }
            }
        }
        let kv = imports.iter().any(|i| i.starts_with("wasi:keyvalue/"));
        assert_eq!(
            kv, uses_kv,
            "{name}: key-value import {kv}, expected {uses_kv}"
        );
        assert!(
            exports.iter().any(|e| e.starts_with(HANDLER)),
            "{name} does not export {HANDLER}…: {exports:?}"
        );
    }
    if !missing.is_empty() {
        println!(
            "SKIPPED for {missing:?}: no .wasm in {:?}; build with `cargo build --target \
             wasm32-wasip2 --release -p wq-queue -p wq-worker -p wq-echo -p wq-fetch`",
            candidate_dirs()
        );
    }
}

/// What each hosted platform's key-value store offers (their docs,
/// 2025–2026): Fermyon Cloud `store` only; Akamai Functions `store` and
/// `batch`. Neither offers `atomics`.
const PLATFORMS: &[(&str, &[&str])] = &[
    ("fermyon-cloud", &["wasi:keyvalue/store@"]),
    (
        "akamai-functions",
        &["wasi:keyvalue/store@", "wasi:keyvalue/batch@"],
    ),
];

/// The hosted builds (`make build-hosted`, feature `hosted`, in
/// `target/hosted`) import only the key-value interfaces each platform
/// offers.
#[test]
fn hosted_builds_import_only_what_each_platform_offers() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/hosted/wasm32-wasip2/release");
    let mut missing = Vec::new();
    for name in ["wq_queue", "wq_worker"] {
        let path = dir.join(format!("{name}.wasm"));
        let Ok(bytes) = std::fs::read(&path) else {
            missing.push(name);
            continue;
        };
        let Surface { imports, .. } = surface(&bytes);
        let kv: Vec<&String> = imports
            .iter()
            .filter(|i| i.starts_with("wasi:keyvalue/"))
            .collect();
        assert!(
            kv.iter().any(|i| i.starts_with("wasi:keyvalue/store@")),
            "{name} (hosted) does not import wasi:keyvalue/store: {kv:?}"
        );
        for (platform, offered) in PLATFORMS {
            for import in &kv {
                assert!(
                    offered.iter().any(|o| import.starts_with(o)),
                    "{name} (hosted) imports {import}, which {platform} does not offer"
                );
            }
        }
    }
    if !missing.is_empty() {
        println!("SKIPPED for {missing:?}: no hosted build in {dir:?}; run `make build-hosted`");
    }
}
