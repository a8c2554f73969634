//! The code a built library runs when it is loaded or unloaded, checked after nvcc builds it: a
//! candidate's code runs only inside its calls. The static scan refuses the spellings it can see
//! (`__attribute__((constructor))`, `.init_array` sections, `atexit`); a namespace-scope C++
//! object with a non-trivial constructor or destructor (`static Boom boom;`, or a header that
//! defines one, such as `<iostream>`) needs no such word, and only the built ELF shows it: the
//! compiler adds a `_GLOBAL__sub_I_*` function to `.init_array` that constructs the object and
//! registers its destructor.
//!
//! What the loader runs is read from the dynamic section (`DT_INIT_ARRAY`, `DT_FINI_ARRAY`,
//! `DT_PREINIT_ARRAY`, `DT_INIT`, `DT_FINI`), each entry resolved through its dynamic relocation
//! to a function symbol. A library nvcc builds from a plain kernel file with `-shared
//! -cudart=static` runs exactly these, and nothing else is admitted: GCC's `frame_dummy` and
//! `__do_global_dtors_aux` (crtstuff), `_init` and `_fini` (crti), nvcc's registration of the
//! fatbinary (`__sti____cudaRegisterAll`) and the static CUDA runtime's own
//! (`libcudart_static_<hash>`). A function-local static object is constructed inside the call
//! that first reaches it and adds no entry.

use crate::error::{Error, Result};
use crate::task::spec::ScanAllow;
use crate::task::Task;
use object::elf;
use object::read::elf::{Dyn, ElfFile64, FileHeader};
use object::{
    Object, ObjectSection, ObjectSymbol, ObjectSymbolTable, RelocationTarget, SymbolKind,
};
use std::collections::HashMap;
use std::path::Path;

/// How `[[scan.allow]]` names this check's finding (`call = "global constructor"`).
pub const GLOBAL_CONSTRUCTOR: &str = "global constructor";

/// One function the loader would run that no plain nvcc-built library has.
#[derive(Debug, Clone, PartialEq)]
pub struct Hook {
    /// Where the loader finds it: `.init_array`, `.fini_array`, `.preinit_array`, `DT_INIT`, `DT_FINI`.
    pub table: &'static str,
    /// The function's symbol, or its address in hex when no symbol names it.
    pub function: String,
}

/// Whether a function the loader runs is one every nvcc-built library has.
fn admitted(table: &str, name: &str) -> bool {
    match table {
        "DT_INIT" => name == "_init",
        "DT_FINI" => name == "_fini",
        _ => {
            matches!(
                name,
                "frame_dummy"
                    | "__do_global_dtors_aux"
                    | "_ZL24__sti____cudaRegisterAllv"
                    | "__sti____cudaRegisterAll"
            ) || name.starts_with("libcudart_static_")
        }
    }
}

/// The functions `so` runs at load or unload that a plain nvcc-built library does not.
pub fn foreign_hooks(so: &Path) -> Result<Vec<Hook>> {
    let bytes =
        std::fs::read(so).map_err(|e| Error::io(format!("cannot read {}", so.display()), e))?;
    let unreadable = |e: object::Error| {
        Error::Internal(format!(
            "{} is not a shared object kpilot can read: {e}",
            so.display()
        ))
    };
    let file = ElfFile64::<object::Endianness>::parse(&*bytes).map_err(unreadable)?;
    let endian = file.endian();
    let mut dt: HashMap<u32, u64> = HashMap::new();
    if let Some((dynamic, _)) = file
        .elf_section_table()
        .dynamic(endian, file.data())
        .map_err(unreadable)?
    {
        for d in dynamic {
            if let Some(tag) = d.tag32(endian) {
                dt.entry(tag).or_insert(d.d_val(endian));
            }
        }
    }
    // Function symbols by address (the full symbol table: the entries are local functions).
    let mut names: HashMap<u64, Vec<String>> = HashMap::new();
    for sym in file.symbols().chain(file.dynamic_symbols()) {
        if sym.kind() != SymbolKind::Text || sym.is_undefined() {
            continue;
        }
        if let Ok(n) = sym.name() {
            let v = names.entry(sym.address()).or_default();
            if !v.iter().any(|x| x == n) {
                v.push(n.to_string());
            }
        }
    }
    // Each relocated word: its run-time value relative to the load address.
    let mut relocated: HashMap<u64, u64> = HashMap::new();
    if let Some(relocs) = file.dynamic_relocations() {
        let dynsym = file.dynamic_symbol_table();
        for (offset, r) in relocs {
            let base = match r.target() {
                RelocationTarget::Symbol(i) => dynsym
                    .as_ref()
                    .and_then(|t| t.symbol_by_index(i).ok())
                    .map_or(0, |s| s.address()),
                _ => 0,
            };
            let addend = if r.has_implicit_addend() {
                word_at(&file, offset).unwrap_or(0) as i64
            } else {
                r.addend()
            };
            relocated.insert(offset, base.wrapping_add(addend as u64));
        }
    }
    let mut targets: Vec<(&'static str, u64)> = Vec::new();
    for (table, at, size) in [
        (
            ".preinit_array",
            elf::DT_PREINIT_ARRAY,
            elf::DT_PREINIT_ARRAYSZ,
        ),
        (".init_array", elf::DT_INIT_ARRAY, elf::DT_INIT_ARRAYSZ),
        (".fini_array", elf::DT_FINI_ARRAY, elf::DT_FINI_ARRAYSZ),
    ] {
        let (Some(&start), Some(&len)) = (dt.get(&at), dt.get(&size)) else {
            continue;
        };
        for slot in (start..start + len).step_by(8) {
            let value = match relocated.get(&slot) {
                Some(&v) => v,
                None => word_at(&file, slot).ok_or_else(|| {
                    Error::Internal(format!(
                        "{}: {table} entry at {slot:#x} lies outside every section",
                        so.display()
                    ))
                })?,
            };
            // 0 and -1 are the terminators of the old .ctors/.dtors layout: nothing runs.
            if value != 0 && value != u64::MAX {
                targets.push((table, value));
            }
        }
    }
    for (table, tag) in [("DT_INIT", elf::DT_INIT), ("DT_FINI", elf::DT_FINI)] {
        if let Some(&v) = dt.get(&tag) {
            targets.push((table, v));
        }
    }
    let mut out = Vec::new();
    for (table, addr) in targets {
        // Every name at that address must be admitted: an alias cannot lend its name.
        let found = names.get(&addr).filter(|v| !v.is_empty());
        match found {
            Some(v) if v.iter().all(|n| admitted(table, n)) => {}
            Some(v) => out.push(Hook {
                table,
                function: v
                    .iter()
                    .find(|n| !admitted(table, n))
                    .cloned()
                    .unwrap_or_default(),
            }),
            None => out.push(Hook {
                table,
                function: format!("an unnamed function at {addr:#x}"),
            }),
        }
    }
    Ok(out)
}

/// The 8-byte word at virtual address `addr` as the file holds it.
fn word_at(file: &ElfFile64<object::Endianness>, addr: u64) -> Option<u64> {
    let s = file
        .sections()
        .find(|s| s.address() <= addr && addr + 8 <= s.address() + s.size())?;
    let b = s.data_range(addr, 8).ok()??;
    let w: [u8; 8] = b.try_into().ok()?;
    Some(if file.elf_header().is_little_endian() {
        u64::from_le_bytes(w)
    } else {
        u64::from_be_bytes(w)
    })
}

/// In words, what a hook is: the compiler's name for a namespace-scope object's constructor and
/// destructor registration is `_GLOBAL__sub_I_<file>`.
fn describe(h: &Hook) -> String {
    if h.function.starts_with("_GLOBAL__sub_I") || h.function.starts_with("_GLOBAL__sub_D") {
        format!(
            "`{}` in {}: the constructor or destructor of a namespace-scope object (a global or static object of a class with a non-trivial constructor or destructor, or a header that defines one, such as <iostream>)",
            h.function, h.table
        )
    } else {
        format!("`{}` in {}", h.function, h.table)
    }
}

/// Refuses the library built from `src` (candidate `name` of `task`) when it runs code at load or
/// unload that a plain nvcc-built library does not: bad input (exit 3), naming the source, what
/// was found and the `[[scan.allow]]` that admits it. Returns the exception used, if any.
pub fn require_none(task: &Task, name: &str, so: &Path, src: &Path) -> Result<Option<ScanAllow>> {
    let hooks = foreign_hooks(so)?;
    if hooks.is_empty() {
        return Ok(None);
    }
    if let Some(a) = task
        .spec
        .scan
        .allow
        .iter()
        .find(|a| a.candidate == name && a.call == GLOBAL_CONSTRUCTOR)
    {
        return Ok(Some(a.clone()));
    }
    Err(Error::Usage(format!(
        "{}: candidate '{name}' runs code when its library is loaded or unloaded, outside its calls: {}. Do that work inside a call (a function-local static object is constructed by the first call that reaches it), or give the object a constexpr constructor and no destructor. If it truly belongs, task.toml needs [[scan.allow]] candidate = \"{name}\", call = \"{GLOBAL_CONSTRUCTOR}\", reason = \"...\" (frozen and recorded)",
        src.display(),
        hooks.iter().map(describe).collect::<Vec<_>>().join("; ")
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_what_a_plain_nvcc_build_runs_is_admitted() {
        for name in [
            "frame_dummy",
            "__do_global_dtors_aux",
            "_ZL24__sti____cudaRegisterAllv",
            "libcudart_static_7bd86af72cd50dfe63513852abf557d8ffc48b76",
        ] {
            assert!(admitted(".init_array", name), "{name}");
        }
        assert!(admitted("DT_INIT", "_init") && admitted("DT_FINI", "_fini"));
        for name in [
            "_GLOBAL__sub_I_tmpxft_00001402_00000000_6_b.cudafe1.cpp",
            "_GLOBAL__sub_I.00200_tmpxft_00001a8e_00000000_6_j.cudafe1.cpp",
            "_ZL19fx_spin_in_teardownv",
            "_init",
        ] {
            assert!(!admitted(".init_array", name), "{name}");
        }
        assert!(!admitted("DT_INIT", "frame_dummy"));
        let h = Hook {
            table: ".init_array",
            function: "_GLOBAL__sub_I_x.cudafe1.cpp".into(),
        };
        assert!(describe(&h).contains("namespace-scope object"));
    }
}
