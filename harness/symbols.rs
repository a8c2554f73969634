//! The ABI check after a build: a shared object must export `kp_<entry>` with C linkage for every
//! entry point of the task. Read from the ELF's dynamic symbol table, so a C++-mangled entry, a
//! missing one and a misspelt one are named before anything is loaded or timed.

use crate::error::{Error, Result};
use object::{Object, ObjectSymbol, SymbolKind};
use std::path::Path;

/// What a shared object exports that concerns the ABI.
#[derive(Debug, Default, PartialEq)]
pub struct Exports {
    /// Defined, global `kp_*` symbols with C linkage.
    pub c: Vec<String>,
    /// Defined, global C++-mangled symbols whose name contains `kp_`.
    pub mangled: Vec<String>,
}

/// Reads the defined global symbols of `so` that concern the ABI.
pub fn exports(so: &Path) -> Result<Exports> {
    let bytes =
        std::fs::read(so).map_err(|e| Error::io(format!("cannot read {}", so.display()), e))?;
    let file = object::File::parse(&*bytes).map_err(|e| {
        Error::Internal(format!(
            "{} is not a shared object kpilot can read: {e}",
            so.display()
        ))
    })?;
    let mut out = Exports::default();
    for sym in file.dynamic_symbols() {
        // Functions only: a data object named kp_<entry> would be called and crash.
        if sym.is_undefined() || !sym.is_global() || sym.kind() != SymbolKind::Text {
            continue;
        }
        let Ok(name) = sym.name() else { continue };
        if name.starts_with("kp_") {
            out.c.push(name.to_string());
        } else if name.starts_with("_Z") && name.contains("kp_") {
            out.mangled.push(name.to_string());
        }
    }
    out.c.sort();
    out.mangled.sort();
    Ok(out)
}

/// The problems of `exp` against the task's entry names, in words; empty when the ABI is met.
/// `extra` lists `kp_` symbols that are no entry of the task (reported, not refused).
pub fn problems(exp: &Exports, entries: &[String]) -> (Vec<String>, Vec<String>) {
    let mut missing = Vec::new();
    for e in entries {
        let want = format!("kp_{e}");
        if exp.c.contains(&want) {
            continue;
        }
        // A mangled name carries the identifier with its length: 23kp_fuse_scale_shift_kernel.
        let tag = format!("{}{want}", want.len());
        match exp.mangled.iter().find(|m| m.contains(&tag)) {
            Some(m) => missing.push(format!(
                "`{want}` is exported C++-mangled as `{m}`: declare it extern \"C\""
            )),
            None => missing.push(format!("`{want}` is not exported")),
        }
    }
    let extra = exp
        .c
        .iter()
        .filter(|s| !entries.iter().any(|e| **s == format!("kp_{e}")))
        .cloned()
        .collect();
    (missing, extra)
}

/// Refuses a built implementation that does not export every entry point (exit 5, naming the
/// source); returns the extra `kp_` symbols, if any, for a warning.
pub fn require_entries(so: &Path, src: &Path, entries: &[String]) -> Result<Vec<String>> {
    let exp = exports(so)?;
    let (missing, extra) = problems(&exp, entries);
    if missing.is_empty() {
        return Ok(extra);
    }
    let mut log = format!(
        "{}: the build does not meet the ABI (every implementation exports kp_<entry> with C linkage for each [[entry]] of task.toml):",
        src.display()
    );
    for m in &missing {
        log.push_str(&format!("\n  - {m}"));
    }
    if !extra.is_empty() {
        log.push_str(&format!(
            "\n  kp_ symbols it does export, which are no entry of the task: {}",
            extra.join(", ")
        ));
    }
    Err(Error::Build {
        file: src.to_path_buf(),
        log,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_mangled_and_extra_symbols_are_named() {
        let exp = Exports {
            c: vec!["kp_fuse_scale_shift".into(), "kp_other_entry".into()],
            mangled: vec!["_Z26kp_fuse_scale_shift_kernelP7kp_callPv".into()],
        };
        let entries = vec![
            "fuse_scale_shift_kernel".to_string(),
            "other_entry".to_string(),
            "third".to_string(),
        ];
        let (missing, extra) = problems(&exp, &entries);
        assert_eq!(missing.len(), 2);
        assert!(missing[0].contains("C++-mangled") && missing[0].contains("extern \"C\""));
        assert!(missing[1].contains("`kp_third` is not exported"));
        assert_eq!(extra, vec!["kp_fuse_scale_shift".to_string()]);
        let ok = Exports {
            c: vec!["kp_third".into()],
            mangled: vec![],
        };
        assert!(problems(&ok, &["third".to_string()]).0.is_empty());
    }
}
