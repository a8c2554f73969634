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
//! (`libcudart_static_<hash>`), each only in the table and only as many times as a plain build
//! has it (a name proves nothing: a candidate can call its own function `libcudart_static_x`).
//! A GNU indirect function (an ifunc symbol or an IRELATIVE relocation) is refused too: its
//! resolver runs while the library is relocated. A function-local static object is constructed
//! inside the call that first reaches it and adds no entry.
//!
//! Not seen here: a destructor registered during a call (a function-local static's, a
//! `thread_local`'s) runs when the worker exits, not in a call; the worker's exit is watched
//! instead (a crash or hang after the last report fails the run, `exit_failures`).

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

/// Whether a function the loader runs is one every nvcc-built library has there.
fn admitted(table: &str, name: &str) -> bool {
    kind(table, name).is_some()
}

/// The admitted kind of entry `name` is in `table`, and how many of that kind a plain nvcc
/// build has there (every library of the build cache: 4 `.init_array` entries, 2 `.fini_array`):
/// a name is only a name (a candidate can call its own function `frame_dummy` or
/// `libcudart_static_x`, or label one so with `asm`), so an entry beyond the plain count is
/// refused even under an admitted name.
fn kind(table: &str, name: &str) -> Option<(&'static str, usize)> {
    let cudart = name.starts_with("libcudart_static_");
    match table {
        "DT_INIT" if name == "_init" => Some(("_init", 1)),
        "DT_FINI" if name == "_fini" => Some(("_fini", 1)),
        ".init_array" if name == "frame_dummy" => Some(("frame_dummy", 1)),
        ".init_array"
            if matches!(
                name,
                "_ZL24__sti____cudaRegisterAllv" | "__sti____cudaRegisterAll"
            ) =>
        {
            Some(("__sti____cudaRegisterAll", 1))
        }
        ".init_array" if cudart => Some(("libcudart_static_*", 2)),
        ".fini_array" if name == "__do_global_dtors_aux" => Some(("__do_global_dtors_aux", 1)),
        ".fini_array" if cudart => Some(("libcudart_static_*", 1)),
        _ => None,
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
                let watched = [
                    elf::DT_INIT,
                    elf::DT_FINI,
                    elf::DT_INIT_ARRAY,
                    elf::DT_INIT_ARRAYSZ,
                    elf::DT_FINI_ARRAY,
                    elf::DT_FINI_ARRAYSZ,
                    elf::DT_PREINIT_ARRAY,
                    elf::DT_PREINIT_ARRAYSZ,
                ];
                // The loader takes the last of a repeated tag; a plain build repeats none.
                if dt.insert(tag, d.d_val(endian)).is_some() && watched.contains(&tag) {
                    return Ok(vec![Hook {
                        table: "the dynamic section",
                        function: format!("a repeated tag {tag:#x}"),
                    }]);
                }
            }
        }
    }
    // A GNU indirect function's resolver runs while the library is relocated, before any call; a
    // plain nvcc build has none (no STT_GNU_IFUNC symbol, no R_X86_64_IRELATIVE relocation).
    let mut out = Vec::new();
    for sym in file.symbols().chain(file.dynamic_symbols()) {
        if let object::SymbolFlags::Elf { st_info, .. } = sym.flags() {
            if st_info & 0xf == elf::STT_GNU_IFUNC {
                out.push(Hook {
                    table: "an indirect function (ifunc)",
                    function: sym.name().unwrap_or("?").to_string(),
                });
            }
        }
    }
    if let Some(relocs) = file.dynamic_relocations() {
        for (offset, r) in relocs {
            if let object::RelocationFlags::Elf { r_type } = r.flags() {
                if r_type == elf::R_X86_64_IRELATIVE {
                    out.push(Hook {
                        table: "an IRELATIVE relocation (ifunc)",
                        function: format!("the word at {offset:#x}"),
                    });
                }
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
        let Some(end) = start.checked_add(len) else {
            out.push(Hook {
                table,
                function: format!("a table of {len} bytes at {start:#x}"),
            });
            continue;
        };
        for slot in (start..end).step_by(8) {
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
    let mut used: HashMap<(&'static str, &'static str), usize> = HashMap::new();
    for (table, addr) in targets {
        // Every name at that address must be admitted: an alias cannot lend its name.
        let found = names.get(&addr).filter(|v| !v.is_empty());
        match found {
            Some(v) if v.iter().all(|n| admitted(table, n)) => {
                // Beyond the plain build's count of this kind: a look-alike (see `kind`).
                let (k, max) = kind(table, &v[0]).expect("admitted");
                let n = used.entry((table, k)).or_default();
                *n += 1;
                if *n > max {
                    out.push(Hook {
                        table,
                        function: format!(
                            "{}, one {k} entry more than a plain nvcc build has ({max})",
                            v[0]
                        ),
                    });
                }
            }
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
    // A symbol can be listed in both symbol tables: name each finding once.
    let mut seen = std::collections::HashSet::new();
    out.retain(|h| seen.insert((h.table, h.function.clone())));
    Ok(out)
}

/// The 8-byte word at virtual address `addr` as the file holds it.
fn word_at(file: &ElfFile64<object::Endianness>, addr: u64) -> Option<u64> {
    let s = file
        .sections()
        .find(|s| s.address() <= addr && addr.saturating_add(8) <= s.address() + s.size())?;
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
            "_ZL24__sti____cudaRegisterAllv",
            "libcudart_static_7bd86af72cd50dfe63513852abf557d8ffc48b76",
        ] {
            assert!(admitted(".init_array", name), "{name}");
        }
        assert!(admitted(".fini_array", "__do_global_dtors_aux"));
        assert!(admitted(".fini_array", "libcudart_static_da0dce49"));
        // Each where a plain build has it, and only as many as it has there.
        assert!(!admitted(".init_array", "__do_global_dtors_aux"));
        assert!(!admitted(".fini_array", "frame_dummy"));
        assert!(!admitted(".preinit_array", "frame_dummy"));
        assert_eq!(
            kind(".init_array", "libcudart_static_x"),
            Some(("libcudart_static_*", 2))
        );
        assert_eq!(
            kind(".fini_array", "libcudart_static_x"),
            Some(("libcudart_static_*", 1))
        );
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
