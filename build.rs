//! Turns kernels/kpilot_abi.h into Rust types with bindgen, then builds a small C probe with `cc`
//! that records the C compiler's view of every size and offset; harness/abi.rs asserts at compile
//! time that Rust's layout is the same, so a drift between the two sides cannot build.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

const HEADER: &str = "kernels/kpilot_abi.h";
/// Pinned so that every machine generates the same bindings; used only when no libclang is found.
const LIBCLANG_WHEEL: &str = "libclang==18.1.1";

fn main() {
    println!("cargo:rerun-if-changed={HEADER}");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=LIBCLANG_PATH");
    let root =
        PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    ensure_libclang(&root);

    let bindings = bindgen::Builder::default()
        .header(root.join(HEADER).to_string_lossy())
        .allowlist_type("kp_.*")
        .allowlist_var("KP_.*")
        .derive_default(true)
        .derive_debug(true)
        .layout_tests(false)
        .generate()
        .unwrap_or_else(|e| panic!("bindgen could not read {HEADER}: {e}"));
    bindings
        .write_to_file(out.join("abi_bindings.rs"))
        .expect("write abi_bindings.rs");

    // The C probe: the C compiler's sizes and offsets, emitted as Rust constants.
    let probe_c = out.join("abi_probe.c");
    std::fs::write(&probe_c, PROBE_C).expect("write abi_probe.c");
    let probe_obj = cc::Build::new()
        .file(&probe_c)
        .include(root.join("kernels"))
        .warnings(true)
        .get_compiler();
    let probe_exe = out.join("abi_probe");
    let status = probe_obj
        .to_command()
        .arg(&probe_c)
        .arg(format!("-I{}", root.join("kernels").display()))
        .arg("-o")
        .arg(&probe_exe)
        .status()
        .expect("run the C compiler for the ABI probe");
    assert!(status.success(), "the C ABI probe did not compile");
    let output = Command::new(&probe_exe)
        .output()
        .expect("run the ABI probe");
    assert!(output.status.success(), "the C ABI probe failed");
    std::fs::write(out.join("abi_layout.rs"), output.stdout).expect("write abi_layout.rs");
}

/// bindgen needs libclang. Use the system's or $LIBCLANG_PATH; otherwise the pinned PyPI wheel,
/// installed once into .tools/py (the same folder the test script uses for nvcc).
fn ensure_libclang(root: &Path) {
    if env::var_os("LIBCLANG_PATH").is_some() {
        return;
    }
    let system = [
        "/usr/lib/llvm-19/lib",
        "/usr/lib/llvm-18/lib",
        "/usr/lib/llvm-16/lib",
        "/usr/lib/llvm-15/lib",
        "/usr/lib/llvm-14/lib",
        "/usr/lib/x86_64-linux-gnu",
        "/usr/lib64",
        "/usr/lib",
    ];
    for dir in system {
        if let Ok(entries) = std::fs::read_dir(dir) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().to_string();
                if name == "libclang.so"
                    || (name.starts_with("libclang.so.")
                        || name.starts_with("libclang-") && name.ends_with(".so"))
                        && !name.contains("cpp")
                {
                    return; // clang-sys finds system copies by itself
                }
            }
        }
    }
    let wheel_dir = root.join(".tools/py");
    let native = wheel_dir.join("clang/native");
    if !native.join("libclang.so").exists() {
        println!("cargo:warning=no libclang found; installing the pinned {LIBCLANG_WHEEL} wheel into .tools/py for bindgen");
        let status = Command::new("python3")
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--target",
            ])
            .arg(&wheel_dir)
            .arg(LIBCLANG_WHEEL)
            .status();
        match status {
            Ok(s) if s.success() => {}
            _ => panic!(
                "bindgen needs libclang: none was found and `python3 -m pip install {LIBCLANG_WHEEL}` failed. \
                 Install libclang (Debian: apt-get install libclang-dev) or set LIBCLANG_PATH."
            ),
        }
    }
    env::set_var("LIBCLANG_PATH", &native);
}

const PROBE_C: &str = r#"
#include <stdio.h>
#include <stddef.h>
#include "kpilot_abi.h"
#define F(T, f) printf("pub const %s_%s: (usize, usize) = (%zu, %zu);\n", #T, #f, offsetof(T, f), sizeof(((T*)0)->f))
int main(void) {
    printf("pub const SIZEOF_KP_TENSOR: usize = %zu;\n", sizeof(kp_tensor));
    printf("pub const SIZEOF_KP_CALL: usize = %zu;\n", sizeof(kp_call));
    printf("pub const ALIGNOF_KP_CALL: usize = %zu;\n", _Alignof(kp_call));
    F(kp_tensor, data); F(kp_tensor, dtype); F(kp_tensor, rank); F(kp_tensor, shape); F(kp_tensor, stride);
    F(kp_call, abi_version); F(kp_call, n_tensors); F(kp_call, n_scalars); F(kp_call, reserved);
    F(kp_call, tensors); F(kp_call, scalars); F(kp_call, path);
    return 0;
}
"#;
