//! Spin's own check of the deployment targets: `spin build` of each hosted
//! manifest validates its components against the platform's world
//! (`deploy/environments/`), and refuses the default build, which needs
//! `wasi:keyvalue/atomics`. Needs the real `spin` (skipped otherwise,
//! unless `WQ_REQUIRE_SPIN` is set) and the builds (`make build build-hosted`).

mod e2e_support;
mod spin_support;

use spin_support::spin_binary;
use std::path::Path;
use std::process::Command;

fn spin_build(spin: &Path, manifest: &Path) -> (bool, String) {
    let out = Command::new(spin)
        .arg("build")
        .arg("-f")
        .arg(manifest)
        .output()
        .expect("run spin build");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn spin_build_accepts_the_hosted_builds_and_refuses_the_default_one() {
    let Some(spin) = spin_binary() else { return };
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for platform in ["fermyon-cloud", "akamai-functions"] {
        let manifest = root.join("deploy").join(platform).join("spin.toml");
        let (ok, log) = spin_build(&spin, &manifest);
        assert!(ok, "{platform}: spin build failed:\n{log}");

        // The same app with the default build's components (and nothing to
        // build): Spin refuses them for what they import.
        let dir = tempfile::tempdir().expect("temp dir");
        let text = std::fs::read_to_string(&manifest).expect("manifest");
        let default_build = root.join("target/wasm32-wasip2/release");
        let env = root
            .join("deploy/environments")
            .join(format!("{platform}.toml"));
        let mut copy = String::new();
        let mut skipping = false;
        for line in text.lines() {
            if line.starts_with('[') {
                skipping = line.ends_with(".build]");
            }
            if !skipping {
                copy.push_str(line);
                copy.push('\n');
            }
        }
        let copy = copy
            .replace(
                "../../target/hosted/wasm32-wasip2/release",
                &default_build.display().to_string(),
            )
            .replace(
                &format!("../environments/{platform}.toml"),
                &env.display().to_string(),
            );
        let negative = dir.path().join("spin.toml");
        std::fs::write(&negative, copy).expect("write manifest");
        let (ok, log) = spin_build(&spin, &negative);
        assert!(!ok, "{platform}: the default build was accepted:\n{log}");
        assert!(
            log.contains("wasi:keyvalue/atomics"),
            "{platform}: refused, but not for atomics:\n{log}"
        );
    }
}
