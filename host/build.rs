//! Builds the plugins magg ships with (`plugins/rust/<name>`) to WebAssembly components and
//! embeds them in the binary, so they serve with no plugins directory (see
//! `src/plugins/bundled.rs`).
//!
//! The plugins are built by a second cargo, for `wasm32-wasip2` in release, into
//! `<target>/wasm` (the directory `plugins/build.sh` uses, so the two share their work).
//! Without the `wasm32-wasip2` target (`rustup target add wasm32-wasip2`), or with
//! `MAGG_BUNDLED_PLUGINS=0`, magg is built without bundled plugins and says so here.

use std::{
    env,
    fmt::Write as _,
    path::{Path, PathBuf},
    process::Command,
};

/// The bundled plugins: (plugin name = its directory under plugins/rust, crate name).
const BUNDLED: &[(&str, &str)] = &[
    ("github-search", "magg-plugin-github-search"),
    ("glama-search", "magg-plugin-glama-search"),
    ("mcp-registry", "magg-plugin-mcp-registry"),
    ("npm-search", "magg-plugin-npm-search"),
    ("smart-configure", "magg-plugin-smart-configure"),
];

const TARGET: &str = "wasm32-wasip2";

fn main() {
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let root = manifest.parent().expect("workspace root").to_owned();
    let plugins = root.join("plugins");
    for watched in ["rust", "Cargo.toml", "Cargo.lock"] {
        println!("cargo:rerun-if-changed={}", plugins.join(watched).display());
    }
    println!("cargo:rerun-if-changed={}", root.join("wit").display());
    println!("cargo:rerun-if-env-changed=MAGG_BUNDLED_PLUGINS");
    println!("cargo:rerun-if-env-changed=CARGO_TARGET_DIR");

    let out = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR"));
    let embedded = match build(&root, &plugins, &out) {
        Ok(list) => list,
        Err(why) => {
            println!("cargo:warning=magg is built without its bundled plugins: {why}");
            Vec::new()
        }
    };
    let mut code = String::from("/// The plugins built into magg: (name, component).\n");
    code.push_str("pub(crate) static EMBEDDED: &[(&str, &[u8])] = &[\n");
    for (name, file) in &embedded {
        let _ = writeln!(
            code,
            "    ({name:?}, include_bytes!({:?})),",
            file.display()
        );
    }
    code.push_str("];\n");
    std::fs::write(out.join("bundled.rs"), code).expect("write bundled.rs");
}

/// Builds the bundled plugins and copies each component into `out`; returns (name, file).
fn build(root: &Path, plugins: &Path, out: &Path) -> Result<Vec<(String, PathBuf)>, String> {
    if env::var("MAGG_BUNDLED_PLUGINS").is_ok_and(|v| v == "0") {
        return Err("MAGG_BUNDLED_PLUGINS=0".to_owned());
    }
    let target_dir = env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|d| if d.is_absolute() { d } else { root.join(d) })
        .unwrap_or_else(|| root.join("target"))
        .join("wasm");
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.arg("build")
        .arg("--manifest-path")
        .arg(plugins.join("Cargo.toml"))
        .args(["--locked", "--release", "--target", TARGET])
        .arg("--target-dir")
        .arg(&target_dir);
    for (_, krate) in BUNDLED {
        cmd.args(["-p", krate]);
    }
    // The outer build's settings (its target, flags, wrappers such as clippy's) are not the
    // plugins' own.
    for (key, _) in env::vars_os() {
        let key = key.to_string_lossy();
        let keep = [
            "CARGO_HOME",
            "CARGO_MAKEFLAGS",
            "CARGO_NET_",
            "CARGO_HTTP_",
            "CARGO_REGISTRIES_",
        ]
        .iter()
        .any(|k| key.starts_with(k));
        let outer = (key.starts_with("CARGO_") && !keep)
            || key.starts_with("__CARGO")
            || matches!(
                key.as_ref(),
                "RUSTFLAGS"
                    | "RUSTC_WRAPPER"
                    | "RUSTC_WORKSPACE_WRAPPER"
                    | "TARGET"
                    | "HOST"
                    | "OUT_DIR"
                    | "OPT_LEVEL"
                    | "DEBUG"
                    | "PROFILE"
                    | "NUM_JOBS"
                    | "RUSTC_LINKER"
            );
        if outer {
            cmd.env_remove(key.as_ref());
        }
    }
    let output = cmd.output().map_err(|e| format!("cannot run cargo: {e}"))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let missing = stderr.contains("may not be installed") || stderr.contains("target may not");
        let tail: Vec<&str> = stderr.lines().rev().take(6).collect();
        return Err(if missing {
            format!("the Rust target {TARGET} is missing; run `rustup target add {TARGET}`")
        } else {
            format!(
                "building them failed: {}",
                tail.into_iter().rev().collect::<Vec<_>>().join(" / ")
            )
        });
    }
    let mut embedded = Vec::new();
    for (name, krate) in BUNDLED {
        let built = target_dir
            .join(TARGET)
            .join("release")
            .join(format!("{}.wasm", krate.replace('-', "_")));
        let copy = out.join(format!("{name}.wasm"));
        std::fs::copy(&built, &copy)
            .map_err(|e| format!("{krate} built no component at {}: {e}", built.display()))?;
        embedded.push(((*name).to_owned(), copy));
    }
    Ok(embedded)
}
