//! kpilot: a harness for optimizing GPU kernels one task at a time. See README.md.

pub mod abi;
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
