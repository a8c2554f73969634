//! Finding nvcc and building kernel sources into shared objects with a task's one flag set.
//! Builds are cached by a hash of the source, every header it includes (transitively, quoted
//! includes), the full flag line and nvcc's version.

use crate::error::{Error, Result};
use crate::task::sha256_hex;
use std::path::{Path, PathBuf};
use std::process::Command;

#[derive(Debug, Clone)]
pub struct Nvcc {
    pub path: PathBuf,
    pub version: String,
    /// Folder holding libcudart_static.a (toolkit: lib64; PyPI wheels: lib).
    pub lib_dir: Option<PathBuf>,
}

impl Nvcc {
    /// $KPILOT_NVCC, then /usr/local/cuda/bin/nvcc, then the pinned wheels in <root>/.tools/py,
    /// then nvcc on PATH. Called by its real path: the wheels' nvcc finds its parts relative to it.
    pub fn find(root: &Path) -> Result<Nvcc> {
        let mut candidates: Vec<PathBuf> = Vec::new();
        if let Some(p) = std::env::var_os("KPILOT_NVCC") {
            candidates.push(PathBuf::from(p));
        }
        candidates.push(PathBuf::from("/usr/local/cuda/bin/nvcc"));
        candidates.push(root.join(".tools/py/nvidia/cu13/bin/nvcc"));
        if let Some(paths) = std::env::var_os("PATH") {
            candidates.extend(std::env::split_paths(&paths).map(|d| d.join("nvcc")));
        }
        let Some(found) = candidates.iter().find(|p| p.is_file()) else {
            return Err(Error::Environment(format!(
                "nvcc not found (looked at $KPILOT_NVCC, /usr/local/cuda/bin/nvcc, {}, and PATH). \
                 Install the CUDA toolkit, set KPILOT_NVCC, or run scripts/test.sh once to install the pinned nvcc 13.0 wheels",
                root.join(".tools/py/nvidia/cu13/bin/nvcc").display()
            )));
        };
        let path = found
            .canonicalize()
            .map_err(|e| Error::io(format!("cannot resolve {}", found.display()), e))?;
        let out = Command::new(&path)
            .arg("--version")
            .output()
            .map_err(|e| Error::io(format!("cannot run {}", path.display()), e))?;
        if !out.status.success() {
            return Err(Error::Environment(format!(
                "{} --version failed: {}",
                path.display(),
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        let text = String::from_utf8_lossy(&out.stdout);
        let version = text
            .lines()
            .filter(|l| l.contains("release") || l.starts_with("Build"))
            .map(str::trim)
            .collect::<Vec<_>>()
            .join("; ");
        let bin = path.parent().unwrap_or(Path::new("/"));
        let lib_dir = ["../lib64", "../lib"]
            .iter()
            .map(|d| bin.join(d))
            .find(|d| d.join("libcudart_static.a").exists())
            .and_then(|d| d.canonicalize().ok());
        Ok(Nvcc {
            path,
            version: if version.is_empty() {
                "unknown".into()
            } else {
                version
            },
            lib_dir,
        })
    }

    /// The complete command-line flags (everything but the source and output paths).
    pub fn flag_line(&self, task_flags: &[String], arch: &Arch, include_dir: &Path) -> Vec<String> {
        let mut f: Vec<String> = task_flags.to_vec();
        f.push(arch.gencode());
        f.extend([
            "-Xcompiler=-fPIC".to_string(),
            "-shared".to_string(),
            "-cudart=static".to_string(),
        ]);
        f.push(format!("-I{}", include_dir.display()));
        if let Some(l) = &self.lib_dir {
            f.push(format!("-L{}", l.display()));
        }
        f
    }

    /// True when `build` would return a cached object without running nvcc.
    pub fn is_cached(
        &self,
        src: &Path,
        flags: &[String],
        include_dir: &Path,
        cache_dir: &Path,
    ) -> bool {
        let Ok(key) = build_key(src, flags, include_dir, &self.version) else {
            return false;
        };
        cache_dir.join(format!("{}.so", &key[..32])).exists()
            && read_deps(&cache_dir.join(format!("{}.deps.json", &key[..32])))
                .is_some_and(|d| deps_unchanged(&d))
    }

    /// Builds `src` into a shared object under `cache_dir`, or returns the cached one.
    pub fn build(
        &self,
        src: &Path,
        flags: &[String],
        include_dir: &Path,
        cache_dir: &Path,
    ) -> Result<Built> {
        let key = build_key(src, flags, include_dir, &self.version)?;
        std::fs::create_dir_all(cache_dir)
            .map_err(|e| Error::io(format!("cannot create {}", cache_dir.display()), e))?;
        // Named by content alone: the same source under another name is the same build.
        let so = cache_dir.join(format!("{}.so", &key[..32]));
        let deps_path = cache_dir.join(format!("{}.deps.json", &key[..32]));
        if so.exists() {
            // The key follows quoted includes by reading the text; nvcc's own dependency list,
            // kept with the build, catches what that misses (angle includes of project files,
            // macros): a hit only counts while every project file it names is unchanged.
            if let Some(includes) = read_deps(&deps_path).filter(|d| deps_unchanged(d)) {
                return Ok(Built {
                    so,
                    key,
                    cached: true,
                    seconds: 0.0,
                    includes,
                });
            }
        }
        let tmp = cache_dir.join(
            format!(
                ".{}.{}.{:?}.tmp.so",
                &key[..32],
                std::process::id(),
                std::thread::current().id()
            )
            .replace(['(', ')'], ""),
        );
        let t0 = std::time::Instant::now();
        let dfile = tmp.with_extension("d");
        let out = Command::new(&self.path)
            .args(flags)
            .arg("-MD")
            .arg("-MF")
            .arg(&dfile)
            .arg("-o")
            .arg(&tmp)
            .arg(src)
            .output()
            .map_err(|e| Error::io(format!("cannot run {}", self.path.display()), e))?;
        let deps = std::fs::read_to_string(&dfile);
        let _ = std::fs::remove_file(&dfile);
        if !out.status.success() {
            let _ = std::fs::remove_file(&tmp);
            let log = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            return Err(Error::Build {
                file: src.to_path_buf(),
                log: cargo_style(&log),
            });
        }
        let deps = deps.map_err(|e| {
            Error::io(
                format!("nvcc wrote no dependency list for {}", src.display()),
                e,
            )
        })?;
        let includes = hash_deps(&parse_depfile(&deps))?;
        let json =
            serde_json::to_vec_pretty(&includes).map_err(|e| Error::Internal(e.to_string()))?;
        std::fs::write(&deps_path, json)
            .map_err(|e| Error::io(format!("cannot write {}", deps_path.display()), e))?;
        std::fs::rename(&tmp, &so)
            .map_err(|e| Error::io(format!("cannot move the build into {}", so.display()), e))?;
        Ok(Built {
            so,
            key,
            cached: false,
            seconds: t0.elapsed().as_secs_f64(),
            includes,
        })
    }
}

#[derive(Debug, Clone)]
pub struct Built {
    pub so: PathBuf,
    pub key: String,
    pub cached: bool,
    pub seconds: f64,
    /// Every file the compilation read, as nvcc listed it, with its sha256 at build time.
    pub includes: Vec<Include>,
}

/// One file a build read.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Include {
    /// Relative to the working directory when inside it, else absolute.
    pub path: String,
    pub sha256: String,
    /// Part of the toolchain or the system (nvcc's include tree, /usr): covered by the nvcc
    /// version in the build key and not re-checked on a cache hit (another machine has them
    /// elsewhere).
    pub system: bool,
}

/// The paths of a make-style dependency file (`target: dep dep \` ...), backslash-escaped
/// spaces kept.
pub fn parse_depfile(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.peek() {
                Some(' ') => {
                    cur.push(' ');
                    chars.next();
                }
                Some('\n') | Some('\r') => {}
                _ => cur.push('\\'),
            },
            c if c.is_whitespace() => {
                if !cur.is_empty() {
                    words.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        words.push(cur);
    }
    // Everything after the first word ending in ':' (the target) is a prerequisite.
    let mut out = Vec::new();
    let mut in_deps = false;
    for w in words {
        if in_deps {
            if !out.contains(&w) {
                out.push(w);
            }
        } else if w.ends_with(':') {
            in_deps = true;
        }
    }
    out
}

fn is_system(p: &Path) -> bool {
    // The compiler's and the C library's headers, and a CUDA toolkit's (installed under
    // /usr/local/cuda*, or the pip wheels' nvidia/.../include): not project files.
    let sys = [
        "/usr/include",
        "/usr/lib",
        "/usr/local/include",
        "/usr/local/cuda",
    ];
    sys.iter()
        .any(|d| p.starts_with(d) || p.to_string_lossy().starts_with(d))
        || (p.components().any(|c| c.as_os_str() == "nvidia")
            && p.components().any(|c| c.as_os_str() == "include"))
}
/// Hashes each dependency; paths inside the working directory become relative.
fn hash_deps(deps: &[String]) -> Result<Vec<Include>> {
    let cwd = std::env::current_dir()
        .ok()
        .and_then(|c| c.canonicalize().ok());
    let mut v = Vec::new();
    for d in deps {
        let canon = Path::new(d)
            .canonicalize()
            .map_err(|e| Error::io(format!("nvcc listed {d} as read, and it cannot be read"), e))?;
        let bytes = std::fs::read(&canon)
            .map_err(|e| Error::io(format!("cannot read {}", canon.display()), e))?;
        let system = is_system(&canon);
        let path = match cwd.as_ref().and_then(|c| canon.strip_prefix(c).ok()) {
            Some(rel) if !system => rel.display().to_string(),
            _ => canon.display().to_string(),
        };
        v.push(Include {
            path,
            sha256: sha256_hex(&bytes),
            system,
        });
    }
    v.sort_by(|a, b| a.path.cmp(&b.path));
    v.dedup_by(|a, b| a.path == b.path);
    Ok(v)
}

fn read_deps(p: &Path) -> Option<Vec<Include>> {
    serde_json::from_slice(&std::fs::read(p).ok()?).ok()
}

/// True while every non-system file of a cached build still has the hash it was built with.
fn deps_unchanged(deps: &[Include]) -> bool {
    deps.iter().filter(|d| !d.system).all(|d| {
        std::fs::read(&d.path)
            .map(|b| sha256_hex(&b) == d.sha256)
            .unwrap_or(false)
    })
}

/// One hash over every file a build read (path and content hash), for the ledger.
pub fn includes_sha256(incs: &[Include]) -> String {
    let mut parts = Vec::new();
    for i in incs {
        parts.extend_from_slice(i.path.as_bytes());
        parts.push(0);
        parts.extend_from_slice(i.sha256.as_bytes());
        parts.push(b'\n');
    }
    sha256_hex(&parts)
}

/// The target architecture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arch(pub String);

impl Arch {
    /// From a compute capability: Hopper and Blackwell get their arch-specific `a` target
    /// (wgmma, setmaxnreg, tcgen05 need it); others the plain one.
    pub fn from_cc(major: i32, minor: i32) -> Arch {
        let suffix = if (major == 9 && minor == 0) || major == 10 {
            "a"
        } else {
            ""
        };
        Arch(format!("sm_{major}{minor}{suffix}"))
    }

    pub fn parse(s: &str) -> Option<Arch> {
        let digits = s.strip_prefix("sm_")?;
        let core = digits.trim_end_matches(['a', 'f']);
        (core.len() >= 2 && core.chars().all(|c| c.is_ascii_digit())).then(|| Arch(s.to_string()))
    }

    pub fn gencode(&self) -> String {
        let n = self.0.trim_start_matches("sm_");
        format!("-gencode=arch=compute_{n},code=sm_{n}")
    }
}

/// nvcc says `file.cu(12): error: ...`; editors and humans want `file.cu:12: error: ...`.
fn cargo_style(log: &str) -> String {
    log.lines()
        .map(|l| {
            if let Some(open) = l.find('(') {
                if let Some(close) = l[open..].find("): ") {
                    let num = &l[open + 1..open + close];
                    if !num.is_empty() && num.chars().all(|c| c.is_ascii_digit()) {
                        return format!("{}:{}: {}", &l[..open], num, &l[open + close + 3..]);
                    }
                }
            }
            l.to_string()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Hash of the source, its quoted includes (transitively), the flags and nvcc's version.
pub fn build_key(
    src: &Path,
    flags: &[String],
    include_dir: &Path,
    nvcc_version: &str,
) -> Result<String> {
    let mut parts: Vec<u8> = Vec::new();
    let mut seen: Vec<PathBuf> = Vec::new();
    hash_with_includes(src, include_dir, &mut parts, &mut seen)?;
    // Machine-specific -I/-L paths do not change the code; leave them out of the key.
    for f in flags
        .iter()
        .filter(|f| !f.starts_with("-I") && !f.starts_with("-L"))
    {
        parts.extend_from_slice(f.as_bytes());
        parts.push(0);
    }
    parts.extend_from_slice(nvcc_version.as_bytes());
    Ok(sha256_hex(&parts))
}

fn hash_with_includes(
    file: &Path,
    include_dir: &Path,
    parts: &mut Vec<u8>,
    seen: &mut Vec<PathBuf>,
) -> Result<()> {
    let canon = file
        .canonicalize()
        .map_err(|e| Error::io(format!("cannot read {}", file.display()), e))?;
    if seen.contains(&canon) {
        return Ok(());
    }
    seen.push(canon.clone());
    let text = std::fs::read(&canon)
        .map_err(|e| Error::io(format!("cannot read {}", canon.display()), e))?;
    parts.extend_from_slice(&(text.len() as u64).to_le_bytes());
    parts.extend_from_slice(&text);
    for line in String::from_utf8_lossy(&text).lines() {
        let l = line.trim_start();
        let Some(rest) = l.strip_prefix("#include") else {
            continue;
        };
        let rest = rest.trim();
        let Some(inner) = rest.strip_prefix('"').and_then(|r| r.split('"').next()) else {
            continue;
        };
        let here = canon.parent().unwrap_or(Path::new(".")).join(inner);
        let there = include_dir.join(inner);
        if here.exists() {
            hash_with_includes(&here, include_dir, parts, seen)?;
        } else if there.exists() {
            hash_with_includes(&there, include_dir, parts, seen)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arch_from_cc() {
        assert_eq!(Arch::from_cc(9, 0), Arch("sm_90a".into()));
        assert_eq!(Arch::from_cc(8, 0), Arch("sm_80".into()));
        assert_eq!(
            Arch::from_cc(10, 0).gencode(),
            "-gencode=arch=compute_100a,code=sm_100a"
        );
        assert!(Arch::parse("sm_90a").is_some());
        assert!(Arch::parse("compute_90").is_none());
        assert!(Arch::parse("sm_x").is_none());
    }

    #[test]
    fn nvcc_errors_become_file_colon_line() {
        let s = cargo_style(
            "tasks/t/v1.cu(12): error: identifier \"foo\" is undefined\n1 error detected",
        );
        assert!(s.starts_with("tasks/t/v1.cu:12: error: identifier"), "{s}");
    }

    #[test]
    fn a_depfile_lists_every_prerequisite_once() {
        let d = "/tmp/x.so : tasks/t/baseline.cu \\\n    /usr/include/stdio.h \\\n    kernels/kpilot_abi.h my\\ dir/h.h \\\n    kernels/kpilot_abi.h\n";
        assert_eq!(
            parse_depfile(d),
            vec![
                "tasks/t/baseline.cu",
                "/usr/include/stdio.h",
                "kernels/kpilot_abi.h",
                "my dir/h.h"
            ]
        );
        assert!(is_system(Path::new("/usr/local/cuda/include/cuda.h")));
        assert!(is_system(Path::new(
            "/w/.tools/py/nvidia/cu13/include/cuda_runtime.h"
        )));
        assert!(!is_system(Path::new("/w/tasks/t/baseline.cu")));
    }

    #[test]
    fn a_cached_build_is_stale_once_a_file_it_read_changes() {
        let d = tempfile::tempdir().unwrap();
        let h = d.path().join("h.h");
        std::fs::write(&h, "int a;").unwrap();
        let inc = Include {
            path: h.display().to_string(),
            sha256: sha256_hex(b"int a;"),
            system: false,
        };
        assert!(deps_unchanged(std::slice::from_ref(&inc)));
        std::fs::write(&h, "int b;").unwrap();
        assert!(!deps_unchanged(std::slice::from_ref(&inc)));
        let gone = Include {
            path: d.path().join("gone.h").display().to_string(),
            ..inc.clone()
        };
        assert!(!deps_unchanged(&[gone]));
        // System headers are left to the nvcc version in the key.
        let sys = Include {
            system: true,
            ..inc
        };
        assert!(deps_unchanged(&[sys]));
    }

    #[test]
    fn the_key_covers_included_headers_and_flags() {
        let d = tempfile::tempdir().unwrap();
        let inc = d.path().join("inc");
        std::fs::create_dir(&inc).unwrap();
        std::fs::write(inc.join("h.h"), "int a;").unwrap();
        let src = d.path().join("k.cu");
        std::fs::write(&src, "#include \"h.h\"\nint b;").unwrap();
        let f = vec!["-O3".to_string()];
        let k1 = build_key(&src, &f, &inc, "13.0").unwrap();
        std::fs::write(inc.join("h.h"), "int a2;").unwrap();
        let k2 = build_key(&src, &f, &inc, "13.0").unwrap();
        assert_ne!(k1, k2, "a header change must change the key");
        let k3 = build_key(&src, &["-O2".to_string()], &inc, "13.0").unwrap();
        assert_ne!(k2, k3, "a flag change must change the key");
        assert_ne!(
            k2,
            build_key(&src, &f, &inc, "13.1").unwrap(),
            "nvcc's version is part of the key"
        );
        assert_eq!(
            k2,
            build_key(&src, &[f[0].clone(), "-I/elsewhere".into()], &inc, "13.0").unwrap(),
            "include paths are not"
        );
    }
}
