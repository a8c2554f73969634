//! From profiled launches to a side-by-side digest: what each side's kernels did per call against
//! the row's compulsory bytes, and a one-line bottleneck class with the evidence.

use super::csv::Launch;
use serde::{Deserialize, Serialize};

const STALL_PREFIX: &str = "smsp__average_warp_latency_issue_stalled_";

/// One side's profile, per call of the implementation (a call may launch several kernels).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SideDigest {
    /// Kernels one call launches: name, grid, block.
    pub kernels: Vec<String>,
    /// Calls profiled.
    pub calls: u32,
    pub duration_us: f64,
    pub dram_read_bytes: f64,
    pub dram_write_bytes: f64,
    /// DRAM bytes over the row's compulsory bytes (1.0: nothing re-read or written twice).
    pub dram_over_compulsory: f64,
    pub dram_tbps: f64,
    /// Time-weighted over the call's kernels, % of peak.
    pub dram_throughput_pct: f64,
    pub l2_throughput_pct: f64,
    pub achieved_occupancy_pct: f64,
    pub theoretical_occupancy_pct: f64,
    pub registers_per_thread: f64,
    pub shared_mem_per_block: f64,
    /// Local-memory bytes loaded and stored (register spills and local arrays).
    pub local_bytes: f64,
    /// Bytes one thread moves per global load / store instruction (16: 128-bit vector access).
    pub load_width_bytes: f64,
    pub store_width_bytes: f64,
    /// The three largest stall reasons (name, ratio).
    pub top_stalls: Vec<(String, f64)>,
    pub bottleneck: String,
    /// Metrics ncu reported unavailable.
    pub missing: Vec<String>,
}

fn tw(launches: &[&Launch], metric: &str) -> f64 {
    // Time-weighted mean over the kernels of a call.
    let (mut num, mut den) = (0.0, 0.0);
    for l in launches {
        let t = l.get("gpu__time_duration.sum").unwrap_or(0.0);
        if let Some(v) = l.get(metric) {
            num += v * t;
            den += t;
        }
    }
    if den > 0.0 {
        num / den
    } else {
        0.0
    }
}

fn sum(launches: &[&Launch], metric: &str) -> f64 {
    launches.iter().filter_map(|l| l.get(metric)).sum()
}

fn max(launches: &[&Launch], metric: &str) -> f64 {
    launches
        .iter()
        .filter_map(|l| l.get(metric))
        .fold(0.0, f64::max)
}

/// Digests the launches of `calls` profiled calls of one side; `compulsory` is the row's
/// compulsory bytes (inputs read once at their distinct size, outputs written once).
pub fn digest(launches: &[Launch], calls: u32, compulsory: u64) -> SideDigest {
    if launches.is_empty() {
        return SideDigest {
            calls,
            bottleneck: "no kernel launch was profiled".into(),
            ..Default::default()
        };
    }
    let calls = calls.max(1);
    let per_call = (launches.len() / calls as usize).max(1);
    // The last call's kernels name the call; every call is averaged for the numbers.
    let all: Vec<&Launch> = launches.iter().collect();
    let n = calls as f64;
    let duration_ns = sum(&all, "gpu__time_duration.sum") / n;
    let read = sum(&all, "dram__bytes_read.sum") / n;
    let write = sum(&all, "dram__bytes_write.sum") / n;
    let ld_inst = sum(&all, "smsp__sass_inst_executed_op_global_ld.sum");
    let st_inst = sum(&all, "smsp__sass_inst_executed_op_global_st.sum");
    let ld_bytes = sum(&all, "l1tex__t_bytes_pipe_lsu_mem_global_op_ld.sum");
    let st_bytes = sum(&all, "l1tex__t_bytes_pipe_lsu_mem_global_op_st.sum");
    let mut stalls: Vec<(String, f64)> = all
        .first()
        .map(|l| {
            l.metrics
                .keys()
                .filter_map(|k| k.strip_prefix(STALL_PREFIX))
                .filter_map(|k| k.strip_suffix(".ratio"))
                .map(|r| (r.to_string(), tw(&all, &format!("{STALL_PREFIX}{r}.ratio"))))
                .collect()
        })
        .unwrap_or_default();
    stalls.sort_by(|a, b| b.1.total_cmp(&a.1));
    stalls.truncate(3);
    let mut missing: Vec<String> = launches.iter().flat_map(|l| l.missing.clone()).collect();
    missing.sort();
    missing.dedup();
    let mut d = SideDigest {
        kernels: launches[launches.len() - per_call..]
            .iter()
            .map(|l| format!("{} grid {} block {}", short(&l.kernel), l.grid, l.block))
            .collect(),
        calls,
        duration_us: duration_ns / 1e3,
        dram_read_bytes: read,
        dram_write_bytes: write,
        dram_over_compulsory: if compulsory > 0 {
            (read + write) / compulsory as f64
        } else {
            0.0
        },
        dram_tbps: if duration_ns > 0.0 {
            (read + write) / duration_ns / 1e3
        } else {
            0.0
        },
        dram_throughput_pct: tw(&all, "dram__throughput.avg.pct_of_peak_sustained_elapsed"),
        l2_throughput_pct: tw(&all, "lts__throughput.avg.pct_of_peak_sustained_elapsed"),
        achieved_occupancy_pct: tw(&all, "sm__warps_active.avg.pct_of_peak_sustained_active"),
        theoretical_occupancy_pct: tw(&all, "sm__maximum_warps_per_active_cycle_pct"),
        registers_per_thread: max(&all, "launch__registers_per_thread"),
        shared_mem_per_block: max(&all, "launch__shared_mem_per_block_static")
            + max(&all, "launch__shared_mem_per_block_dynamic"),
        local_bytes: (sum(&all, "l1tex__t_bytes_pipe_lsu_mem_local_op_ld.sum")
            + sum(&all, "l1tex__t_bytes_pipe_lsu_mem_local_op_st.sum"))
            / n,
        load_width_bytes: if ld_inst > 0.0 {
            ld_bytes / ld_inst / 32.0
        } else {
            0.0
        },
        store_width_bytes: if st_inst > 0.0 {
            st_bytes / st_inst / 32.0
        } else {
            0.0
        },
        top_stalls: stalls,
        bottleneck: String::new(),
        missing,
    };
    d.bottleneck = classify(&d);
    d
}

/// The kernel's name without template arguments and parameter lists.
fn short(name: &str) -> String {
    let name = name
        .replace("<unnamed>::", "")
        .replace("(anonymous namespace)::", "");
    let base = name.split('(').next().unwrap_or(&name);
    let base = base.trim_start_matches("void ");
    let mut depth = 0;
    let mut out = String::new();
    for c in base.chars() {
        match c {
            '<' => {
                if depth == 0 {
                    out.push_str("<…>");
                }
                depth += 1;
            }
            '>' => depth -= 1,
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

/// One line: the bottleneck class and the numbers behind it.
pub fn classify(d: &SideDigest) -> String {
    let stall = d
        .top_stalls
        .first()
        .map(|(n, v)| format!("{n} {v:.1}"))
        .unwrap_or_else(|| "no stall data".into());
    if d.duration_us < 5.0 {
        return format!(
            "launch/tail-bound: {:.2} us per call is mostly fixed cost (DRAM {:.0}% of peak)",
            d.duration_us, d.dram_throughput_pct
        );
    }
    if d.local_bytes > 0.0 {
        return format!(
            "spills: {:.0} bytes of local memory traffic per call at {} registers",
            d.local_bytes, d.registers_per_thread
        );
    }
    if d.dram_over_compulsory > 1.10 {
        return format!(
            "excess DRAM traffic: {:.2}x the compulsory bytes reach DRAM (re-reads or partial writes)",
            d.dram_over_compulsory
        );
    }
    if d.dram_throughput_pct >= 80.0 {
        return format!(
            "DRAM-bound: {:.1}% of peak DRAM throughput ({:.2} TB/s), traffic {:.2}x compulsory",
            d.dram_throughput_pct, d.dram_tbps, d.dram_over_compulsory
        );
    }
    if d.l2_throughput_pct >= 80.0 {
        return format!(
            "L2-bound: L2 at {:.1}% of peak while DRAM is at {:.1}%",
            d.l2_throughput_pct, d.dram_throughput_pct
        );
    }
    if d.achieved_occupancy_pct < 25.0 {
        return format!(
            "latency-bound at low occupancy: {:.0}% of warps active ({:.0}% possible, {} registers), top stall {stall}, DRAM {:.0}% of peak",
            d.achieved_occupancy_pct, d.theoretical_occupancy_pct, d.registers_per_thread, d.dram_throughput_pct
        );
    }
    format!(
        "memory pipe under-fed: DRAM {:.1}% of peak with {:.0}% of warps active, {:.0}-byte loads, top stall {stall}",
        d.dram_throughput_pct, d.achieved_occupancy_pct, d.load_width_bytes
    )
}

fn bytes(b: f64) -> String {
    format!("{:.1} MB", b / 1e6)
}

/// The harness's device time per launch of the profiled row, each side, and the run it came
/// from: a number beside ncu's says which ledger record produced it.
#[derive(Debug, Clone, PartialEq)]
pub struct HarnessTimes {
    pub run_id: String,
    /// The run's commit, as its record has it (None when it had none).
    pub commit: Option<String>,
    /// The run's tree differed from that commit.
    pub dirty: bool,
    /// [baseline, candidate], microseconds (medians of the samples).
    pub device_us: [f64; 2],
}

impl HarnessTimes {
    /// The digest's row label: "device time per launch (harness, run <id>, commit <7 hex>)".
    pub fn label(&self) -> String {
        let commit = match &self.commit {
            Some(c) => format!(
                ", commit {}{}",
                &c[..c.len().min(7)],
                if self.dirty {
                    " + uncommitted changes"
                } else {
                    ""
                }
            ),
            None => String::new(),
        };
        format!(
            "device time per launch (harness, run {}{commit})",
            self.run_id
        )
    }
}

/// The side-by-side markdown digest of one row. `harness`: the harness's own times for the row,
/// a row of the table; or why there are none, said above the table.
pub fn markdown(
    title: &str,
    compulsory: u64,
    harness: Result<&HarnessTimes, &str>,
    sides: &[(&str, &SideDigest)],
) -> String {
    let mut s = format!(
        "# {title}\n\nCompulsory traffic {} (inputs read once at their distinct size, outputs written once). Each side profiled for {} call(s) after warm-up, `--clock-control none`, caches flushed between kernel replays (ncu's default), only the implementation's own launches.\n\n",
        bytes(compulsory as f64),
        sides.first().map_or(0, |s| s.1.calls)
    );
    if let Err(why) = harness {
        s += &format!("No harness device times beside ncu's: {why}.\n\n");
    }
    s += "| | ";
    s += &sides
        .iter()
        .map(|(n, _)| *n)
        .collect::<Vec<_>>()
        .join(" | ");
    s += " |\n|---|";
    s += &"---|".repeat(sides.len());
    s += "\n";
    let mut row = |name: &str, f: &dyn Fn(&SideDigest) -> String| {
        s += &format!("| {name} | ");
        s += &sides
            .iter()
            .map(|(_, d)| f(d))
            .collect::<Vec<_>>()
            .join(" | ");
        s += " |\n";
    };
    row("kernels", &|d| d.kernels.join("<br>"));
    row("duration per call (ncu)", &|d| {
        format!("{:.2} µs", d.duration_us)
    });
    if let Ok(h) = harness {
        let i = std::cell::Cell::new(0usize);
        row(&h.label(), &|_| {
            let v = h.device_us[i.get().min(1)];
            i.set(i.get() + 1);
            format!("{v:.2} µs")
        });
    }
    row("DRAM read / write", &|d| {
        format!(
            "{} / {}",
            bytes(d.dram_read_bytes),
            bytes(d.dram_write_bytes)
        )
    });
    row("DRAM bytes / compulsory", &|d| {
        format!("{:.3}", d.dram_over_compulsory)
    });
    row("DRAM throughput", &|d| {
        format!(
            "{:.1}% of peak, {:.2} TB/s",
            d.dram_throughput_pct, d.dram_tbps
        )
    });
    row("L2 throughput", &|d| {
        format!("{:.1}% of peak", d.l2_throughput_pct)
    });
    row("occupancy achieved / theoretical", &|d| {
        format!(
            "{:.1}% / {:.1}%",
            d.achieved_occupancy_pct, d.theoretical_occupancy_pct
        )
    });
    row("registers / shared memory per block", &|d| {
        format!("{} / {} B", d.registers_per_thread, d.shared_mem_per_block)
    });
    row("local memory (spills)", &|d| bytes(d.local_bytes));
    row("global load / store width per thread", &|d| {
        format!("{:.1} B / {:.1} B", d.load_width_bytes, d.store_width_bytes)
    });
    row("top stalls", &|d| {
        d.top_stalls
            .iter()
            .map(|(n, v)| format!("{n} {v:.2}"))
            .collect::<Vec<_>>()
            .join(", ")
    });
    row("bottleneck", &|d| d.bottleneck.clone());
    for (n, d) in sides {
        if !d.missing.is_empty() {
            s += &format!(
                "\n{n}: ncu reported these metrics unavailable: {}\n",
                d.missing.join(", ")
            );
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_h100_capture_digests_to_dram_bound_v1_and_a_low_occupancy_baseline() {
        let text = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("ncu/fuse_scale_shift__wan-t2v__h100.csv"),
        )
        .unwrap();
        let l = super::super::csv::parse(&text).unwrap();
        // wan-t2v: 774.2 MB read + 387.1 MB written.
        let compulsory = 1_161_216_000u64;
        let base = digest(&l[..1], 1, compulsory);
        let v1 = digest(&l[1..], 1, compulsory);
        assert!((base.duration_us - 400.6).abs() < 1.0, "{base:?}");
        assert!(
            base.kernels[0].starts_with("fss_tile_vec_all_kernel<…>"),
            "{:?}",
            base.kernels
        );
        assert!((base.dram_over_compulsory - 0.987).abs() < 0.01, "{base:?}");
        assert!(base.dram_throughput_pct > 85.0 && v1.dram_throughput_pct > 89.0);
        assert!(v1.bottleneck.starts_with("DRAM-bound"), "{}", v1.bottleneck);
        assert!(v1.duration_us < base.duration_us);
        let harness = HarnessTimes {
            run_id: "20261130T120000Z-0badc0de".into(),
            commit: Some("1eaba93c0ffee".into()),
            dirty: false,
            device_us: [400.0, 381.0],
        };
        let md = markdown(
            "t",
            compulsory,
            Ok(&harness),
            &[("baseline", &base), ("v1", &v1)],
        );
        assert!(
            md.contains("| DRAM throughput |")
                && md.contains(
                    "| device time per launch (harness, run 20261130T120000Z-0badc0de, commit 1eaba93) | 400.00 µs | 381.00 µs |"
                ),
            "{md}"
        );
        assert!(!md.contains("latest run"), "{md}");
        // A dirty tree is said; a run without a commit names the run alone; no run, no row, and
        // the digest says why.
        let dirty = HarnessTimes {
            dirty: true,
            ..harness.clone()
        };
        assert!(dirty
            .label()
            .ends_with("commit 1eaba93 + uncommitted changes)"));
        let bare = HarnessTimes {
            commit: None,
            ..harness
        };
        assert_eq!(
            bare.label(),
            "device time per launch (harness, run 20261130T120000Z-0badc0de)"
        );
        let md = markdown(
            "t",
            compulsory,
            Err("no run of v1 on NVIDIA H100 in the ledger timed row r"),
            &[("baseline", &base), ("v1", &v1)],
        );
        assert!(!md.contains("device time per launch"), "{md}");
        assert!(
            md.contains("\n\nNo harness device times beside ncu's: no run of v1 on NVIDIA H100 in the ledger timed row r.\n\n| |"),
            "{md}"
        );
    }

    #[test]
    fn classes_follow_the_evidence() {
        let mut d = SideDigest {
            duration_us: 50.0,
            dram_throughput_pct: 60.0,
            achieved_occupancy_pct: 15.0,
            theoretical_occupancy_pct: 50.0,
            dram_over_compulsory: 1.0,
            ..Default::default()
        };
        assert!(classify(&d).starts_with("latency-bound"));
        d.dram_over_compulsory = 1.5;
        assert!(classify(&d).starts_with("excess DRAM traffic"));
        d.local_bytes = 1e6;
        assert!(classify(&d).starts_with("spills"));
        d.duration_us = 2.0;
        assert!(classify(&d).starts_with("launch/tail-bound"));
    }
}
