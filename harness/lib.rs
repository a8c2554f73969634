//! kpilot: a harness for optimizing GPU kernels one task at a time. See README.md.

/// `print!` to stdout that never panics: a reader that went away (`kpilot ... | head`) loses the
/// rest of the text, and the command still ends with its own exit code (a verdict, for most).
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stdout(), $($arg)*);
    }};
}

/// `println!` to stdout that never panics (see `out!`).
#[macro_export]
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

pub mod abi;
pub mod brief;
pub mod candidate_cmd;
pub mod check;
pub mod dtype;
pub mod error;
pub mod fidelity;
pub mod freeze;
pub mod gpu;
pub mod inputs;
pub mod judge;
pub mod ledger;
pub mod ledger_cmd;
pub mod library;
pub mod load_code;
pub mod ncu;
pub mod nvcc;
pub mod protocol;
pub mod record;
pub mod reference;
pub mod regress;
pub mod report;
pub mod run;
pub mod run_report;
pub mod scan;
pub mod stats;
pub mod symbols;
pub mod task;
pub mod worker;
