//! GPU tests. They need an NVIDIA driver and a GPU, so they are #[ignore]d on machines without
//! one (CI has none) and run on the GPU machine with `-- --ignored` (see README). Each one says
//! loudly when it finds no GPU instead of passing silently.

use kpilot::dtype::DType;
use kpilot::gpu::Gpu;
use kpilot::inputs::{stream_key, Dist};
use kpilot::library::Support;
use kpilot::nvcc::Nvcc;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The checkout the tests use: KPILOT_REPO, else the working directory when it is a kpilot
/// checkout (the GPU machine runs the carried test binary from the copied tree, wherever that
/// is), else the checkout this binary was built from.
fn repo() -> PathBuf {
    if let Ok(r) = std::env::var("KPILOT_REPO") {
        return PathBuf::from(r);
    }
    let cwd = std::env::current_dir().expect("a working directory");
    if cwd.join("kernels/kpilot_abi.h").exists() && cwd.join("tasks").is_dir() {
        return cwd;
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The kpilot binary: KPILOT_BIN, else target/release/kpilot of `repo()` when there is one, else
/// the one cargo built next to this test.
fn kpilot_bin() -> PathBuf {
    if let Ok(b) = std::env::var("KPILOT_BIN") {
        return PathBuf::from(b);
    }
    let carried = repo().join("target/release/kpilot");
    if carried.exists() {
        return carried;
    }
    PathBuf::from(env!("CARGO_BIN_EXE_kpilot"))
}

fn require_gpu() -> Gpu {
    Gpu::open(0).unwrap_or_else(|e| panic!("this test needs a GPU and found none: {e}"))
}

/// The support kernels (kernels/kpilot_support.cu) built for this GPU and loaded.
fn build_support() -> Support {
    let nvcc = Nvcc::find(&repo()).expect("nvcc");
    let arch = kpilot::run::probe_arch(0).expect("arch");
    let inc = repo().join("kernels");
    let flags = nvcc.flag_line(&["-O3".into(), "-std=c++17".into()], &arch, &inc);
    let built = nvcc
        .build(
            &repo().join("kernels/kpilot_support.cu"),
            &flags,
            &inc,
            &repo().join(".kpilot-cache/build"),
        )
        .expect("build support");
    Support::load(&built.so).expect("load support")
}

#[test]
#[ignore = "needs an NVIDIA GPU; run on the GPU machine with -- --ignored"]
fn gpu_fill_matches_the_cpu_generator_bit_for_bit() {
    let gpu = require_gpu();
    let support = build_support();
    let n: u64 = 100_003;
    let dists = [
        Dist::parse("uniform(-1, 1)").unwrap(),
        Dist::parse("uniform(0.5, 1.5)").unwrap(),
        Dist::parse("randint(0, 2)").unwrap(),
        Dist::parse("randint(-7, 9)").unwrap(),
        Dist::parse("const(0.3)").unwrap(),
        Dist::parse("arange()").unwrap(),
        Dist::parse("spike(-2, 2, 997, 300.3)").unwrap(),
        // A spike a half cannot hold (inf on both sides) and a negative zero.
        Dist::parse("spike(-2, 2, 7, 1e6)").unwrap(),
        Dist::parse("spike(-2, 2, 5, -0)").unwrap(),
    ];
    for dtype in DType::ALL {
        for (k, dist) in dists.iter().enumerate() {
            let buf = gpu.alloc((n as usize) * dtype.size()).unwrap();
            let seed = 0xABCD_0000 + k as u64;
            support
                .fill_random(
                    buf.ptr,
                    dtype.abi_code(),
                    n,
                    seed,
                    3,
                    dist.abi_args(),
                    kpilot::library::Stream(gpu.stream as *mut _),
                )
                .unwrap();
            let mut host = vec![0u8; n as usize * dtype.size()];
            gpu.download(buf.ptr, &mut host).unwrap();
            let key = stream_key(seed, 3);
            for i in 0..n as usize {
                let want = dist.value(key, i as u64, dtype);
                let got = dtype.decode(&host, i);
                assert!(
                    got == want,
                    "{dtype} {dist}: element {i} is {got} on the GPU but {want} on the CPU"
                );
            }
        }
    }
}

#[test]
#[ignore = "needs an NVIDIA GPU; run on the GPU machine with -- --ignored"]
fn the_stream_reference_reads_and_writes_exactly_its_regions() {
    use kpilot::library::KpsStreamRegion;
    let gpu = require_gpu();
    let support = build_support();
    let st = kpilot::library::Stream(gpu.stream as *mut _);
    let len = 1 << 20;
    let (a, b) = (gpu.alloc(len).unwrap(), gpu.alloc(len).unwrap());
    support
        .fill_pattern(a.ptr, len as u64, 0x5A5A_1234, st)
        .unwrap();
    support
        .fill_pattern(b.ptr, len as u64, 0x0F0F_7777, st)
        .unwrap();
    let mut before = vec![0u8; len];
    gpu.download(a.ptr, &mut before).unwrap();
    let mut b_before = vec![0u8; len];
    gpu.download(b.ptr, &mut b_before).unwrap();
    // a: read and written (in place) over its first half; b: written over 1000 vectors after 16
    // bytes. What lies outside the regions is untouched.
    let regions = [
        KpsStreamRegion {
            ptr: a.ptr,
            n_vec: (len / 32) as u64,
            read: 1,
            write: 1,
        },
        KpsStreamRegion {
            ptr: b.ptr + 16,
            n_vec: 1000,
            read: 0,
            write: 1,
        },
    ];
    support.stream(&regions, st).unwrap();
    let (mut ga, mut gb) = (vec![0u8; len], vec![0u8; len]);
    gpu.download(a.ptr, &mut ga).unwrap();
    gpu.download(b.ptr, &mut gb).unwrap();
    assert!(
        ga == before,
        "an in-place region keeps its bytes, and nothing past it changes"
    );
    assert!(
        gb[16..16 + 16_000] == before[..16_000],
        "the written region holds what each thread read (a's vector j), as a fused kernel's would"
    );
    assert!(
        gb[..16] == b_before[..16] && gb[16 + 16_000..] == b_before[16 + 16_000..],
        "nothing outside the written region changes"
    );
    // What it refuses: more than 16 regions (the Rust guard), a misaligned one (the C side).
    assert!(support.stream(&[regions[0]; 17], st).is_err());
    let odd = KpsStreamRegion {
        ptr: a.ptr + 8,
        n_vec: 1,
        read: 1,
        write: 0,
    };
    assert!(support.stream(&[odd], st).is_err());
}

/// A scratch repository root: kernels/, the task with one extra candidate, and a short watchdog.
fn scratch_root(fixture: &str) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let root = d.path();
    copy_dir(&repo().join("kernels"), &root.join("kernels"));
    let task = root.join("tasks/fuse_scale_shift");
    copy_dir(&repo().join("tasks/fuse_scale_shift"), &task);
    let toml = std::fs::read_to_string(task.join("task.toml"))
        .unwrap()
        .replace("row_timeout_s = 180", "row_timeout_s = 20")
        // The result-channel fixtures print and write on purpose; the static scan would refuse them.
        + "\n[[scan.allow]]\ncandidate = \"prints_a_forged_result\"\ncall = \"printf\"\nreason = \"GPU test fixture\"\n"
        + "[[scan.allow]]\ncandidate = \"writes_to_the_result_channel\"\ncall = \"write\"\nreason = \"GPU test fixture\"\n"
        + "[[scan.allow]]\ncandidate = \"leaves_work_running\"\ncall = \"<<<>>> without a stream\"\nreason = \"GPU test fixture\"\n"
        + "[[scan.allow]]\ncandidate = \"leaves_work_running\"\ncall = \"cudaStreamIsCapturing\"\nreason = \"GPU test fixture\"\n"
        + "[[scan.allow]]\ncandidate = \"refuses_and_leaves_work_running\"\ncall = \"<<<>>> without a stream\"\nreason = \"GPU test fixture\"\n"
        + "[[scan.allow]]\ncandidate = \"refuses_and_leaves_work_running\"\ncall = \"cudaStreamIsCapturing\"\nreason = \"GPU test fixture\"\n"
        + "[[scan.allow]]\ncandidate = \"lingers_only_in_timed_calls\"\ncall = \"<<<>>> without a stream\"\nreason = \"GPU test fixture\"\n"
        + "[[scan.allow]]\ncandidate = \"lingers_only_in_timed_calls\"\ncall = \"cudaStreamIsCapturing\"\nreason = \"GPU test fixture\"\n"
        // The teardown fixtures act after the last report through a library destructor, which
        // the scan refuses in a candidate, and the check of the built library after it.
        + "[[scan.allow]]\ncandidate = \"crashes_after_its_last_row\"\ncall = \"destructor\"\nreason = \"GPU test fixture\"\n"
        + "[[scan.allow]]\ncandidate = \"crashes_after_its_last_row\"\ncall = \"global constructor\"\nreason = \"GPU test fixture\"\n"
        + "[[scan.allow]]\ncandidate = \"hangs_after_its_last_row\"\ncall = \"destructor\"\nreason = \"GPU test fixture\"\n"
        + "[[scan.allow]]\ncandidate = \"hangs_after_its_last_row\"\ncall = \"global constructor\"\nreason = \"GPU test fixture\"\n";
    std::fs::write(task.join("task.toml"), toml).unwrap();
    std::fs::copy(
        repo().join("tests/fixtures/wrap.h"),
        task.join("candidates/wrap.h"),
    )
    .unwrap();
    std::fs::copy(
        repo().join("tests/fixtures").join(format!("{fixture}.cu")),
        task.join(format!("candidates/{fixture}.cu")),
    )
    .unwrap();
    freeze(root);
    d
}

/// No GPU needed: every fixture gets past the static scan in its scratch root, so a GPU test
/// that runs one tests what the fixture does, not the scan (`check` stops at the first refused
/// candidate with a `[[scan.allow]]` hint, and says "ok" once every candidate passed; the
/// fidelity rule after it fails for want of a ledger, which is not this test's).
#[test]
fn every_fixture_gets_past_the_scan_in_its_scratch_root() {
    for e in std::fs::read_dir(repo().join("tests/fixtures"))
        .unwrap()
        .flatten()
    {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(fixture) = name.strip_suffix(".cu") else {
            continue;
        };
        let d = scratch_root(fixture);
        let out = Command::new(kpilot_bin())
            .arg("--root")
            .arg(d.path())
            .args(["check", "fuse_scale_shift"])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("[[scan.allow]]"), "{fixture}: {err}");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("fuse_scale_shift: ok ("),
            "{fixture}: {err}"
        );
    }
}

/// Scratch roots freeze their own copy, so the tests do not depend on the repository's freeze.
fn freeze(root: &Path) {
    let out = Command::new(kpilot_bin())
        .arg("--root")
        .arg(root)
        .args([
            "freeze",
            "fuse_scale_shift",
            "--reason",
            "GPU test scratch copy",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            copy_dir(&p, &to.join(e.file_name()));
        } else {
            std::fs::copy(&p, to.join(e.file_name())).unwrap();
        }
    }
}

const SMALL: &str = "qwen_fss_S19_C3072_scale1x1x3072.bf16_shiftfull.bf16";
const REJECT: &str = "rej_fss_shape_mismatch_shift";
const OTHER: &str = "reg_fss_tiny_L1_C17_bf16";

fn run_fixture(fixture: &str, rows: &[&str]) -> (i32, Value) {
    let mut args = vec!["--trials", "7"];
    for r in rows {
        args.extend(["--row", r]);
    }
    run_fixture_with(fixture, &args)
}

/// `kpilot task fuse_scale_shift --candidate <fixture> --json --seed 7 <args>` in a scratch root.
fn run_fixture_with(fixture: &str, args: &[&str]) -> (i32, Value) {
    let d = scratch_root(fixture);
    let mut cmd = Command::new(kpilot_bin());
    cmd.env("KPILOT_CACHE_DIR", repo().join(".kpilot-cache/build"))
        .arg("--root")
        .arg(d.path())
        .args([
            "task",
            "fuse_scale_shift",
            "--candidate",
            fixture,
            "--json",
            "--seed",
            "7",
        ])
        .args(args);
    let out = cmd.output().expect("run kpilot");
    let code = out.status.code().unwrap_or(-1);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let v: Value = serde_json::from_str(&stdout).unwrap_or_else(|_| {
        panic!(
            "{fixture}: no JSON record (exit {code}); stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    // The same record was appended to the scratch ledger.
    let (lines, bad) =
        kpilot::ledger::read(&d.path().join("ledger/fuse_scale_shift.jsonl")).unwrap();
    assert!(
        bad.is_empty() && lines.last().map(|l| &l["run_id"]) == Some(&v["run_id"]),
        "{fixture}: ledger line missing or damaged"
    );
    (code, v)
}

fn row<'a>(v: &'a Value, name: &str) -> &'a Value {
    v["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == name)
        .unwrap_or_else(|| panic!("row {name} not in record"))
}

fn failed_gates(r: &Value, side: &str) -> Vec<String> {
    r[side]["gates"]
        .as_array()
        .map(|g| {
            g.iter()
                .filter(|g| g["pass"] == false)
                .map(|g| g["name"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default()
}

fn assert_caught(fixture: &str, rows: &[&str], row_name: &str, gate: &str) {
    require_gpu();
    let (code, v) = run_fixture(fixture, rows);
    assert_eq!(code, 2, "{fixture}: a correctness failure exits 2");
    let r = row(&v, row_name);
    assert_eq!(r["correct"], false, "{fixture}");
    assert!(
        failed_gates(r, "baseline").is_empty(),
        "{fixture}: the baseline must pass: {:?}",
        failed_gates(r, "baseline")
    );
    assert!(
        failed_gates(r, "candidate").contains(&gate.to_string()),
        "{fixture}: expected the {gate} gate to fail, got {:?}",
        failed_gates(r, "candidate")
    );
    assert!(
        r["speedup"].is_null(),
        "{fixture}: a side that fails a gate gets no speedup number"
    );
    assert_eq!(v["gate"]["pass"], false);
}

#[test]
#[ignore = "needs an NVIDIA GPU; run on the GPU machine with -- --ignored"]
fn the_unbroken_fixture_passes_every_gate() {
    require_gpu();
    let (code, v) = run_fixture("correct", &[SMALL, REJECT, OTHER]);
    for name in [SMALL, REJECT, OTHER] {
        let r = row(&v, name);
        assert_eq!(r["correct"], true, "{name}: {:?}", r["problems"]);
    }
    assert!(row(&v, SMALL)["speedup"].as_f64().is_some());
    // Cold: one buffer set per launch, so no timed launch revisits an output it already wrote,
    // and the small row's sample rotated at least twice the L2.
    let small = row(&v, SMALL);
    assert!(
        small["buffer_sets"].as_u64().unwrap() >= small["launches_per_sample"].as_u64().unwrap(),
        "{small}"
    );
    assert_eq!(small["cold"], true, "{small}");
    // Every set is compared after every sample, at least one unit in each.
    assert!(small["units_per_set"].as_u64().unwrap() >= 1, "{small}");
    // The stream reference ran on the row's buffers and is set against the candidate's time.
    let stream_us = small["stream_us"].as_f64().expect("stream_us recorded");
    let pct = small["pct_of_stream"]
        .as_f64()
        .expect("pct_of_stream recorded");
    assert!(stream_us > 0.0 && pct > 0.0, "{small}");
    // Every tensor of this row is whole 16-byte vectors, so the reference moved the row's bytes.
    assert_eq!(small["stream_bytes"], small["bytes"], "{small}");
    // A full run compares every unit of the correctness call: there is no draw to record.
    assert!(small.get("trial_units_seed").is_none(), "{small}");
    // The run says how many units it compared after each sample: the task's default.
    assert_eq!(v["timing"]["sample_units"], 64, "{}", v["timing"]);
    assert_eq!(
        code, 1,
        "correct everywhere, but a partial run cannot pass the gate"
    );
}

#[test]
#[ignore = "needs an NVIDIA GPU; run on the GPU machine with -- --ignored"]
fn an_answer_copied_from_another_buffer_set_fails_the_tolerance_gate() {
    assert_caught("takes_another_sets_answer", &[SMALL], SMALL, "tolerance");
    let (_, v) = run_fixture("takes_another_sets_answer", &[SMALL]);
    let problems = row(&v, SMALL)["problems"].to_string();
    assert!(
        problems.contains("after a timed sample") && problems.contains("set "),
        "the failure names the timed sample and the set: {problems}"
    );
}

#[test]
#[ignore = "needs an NVIDIA GPU; run on the GPU machine with -- --ignored"]
fn output_right_only_where_units_might_be_checked_fails_the_tolerance_gate() {
    assert_caught("right_only_at_the_ends", &[SMALL], SMALL, "tolerance");
}

#[test]
#[ignore = "needs an NVIDIA GPU; run on the GPU machine with -- --ignored"]
fn a_quick_run_compares_drawn_units_not_only_the_ends() {
    require_gpu();
    let (code, v) = run_fixture_with("wrong_but_the_ends_of_every_call", &["--quick"]);
    assert_eq!(
        code, 2,
        "a --quick run that finds a wrong output exits 2, not 8"
    );
    assert_eq!(v["quick"], true);
    // 4096 tokens, up to 2048 drawn: the wrong middle is found though the ends are right.
    let r = row(&v, "qwen_fss_S4096_C3072_scale1x1x3072.bf16_shiftfull.bf16");
    assert!(failed_gates(r, "baseline").is_empty(), "{r}");
    assert!(
        failed_gates(r, "candidate").contains(&"tolerance".to_string()),
        "{:?}",
        failed_gates(r, "candidate")
    );
    // The draw is recorded: its seed gives back the units compared, the ends among them.
    let seed = r["trial_units_seed"]
        .as_u64()
        .expect("a quick run records its draw of units");
    let units = kpilot::check::pick_units(4096, Some(kpilot::run::QUICK_TRIAL_UNITS), seed);
    // 2046 draws with replacement, deduplicated, plus the two ends.
    assert!(
        units.len() > kpilot::run::QUICK_TRIAL_UNITS / 2
            && units.len() <= kpilot::run::QUICK_TRIAL_UNITS,
        "{}",
        units.len()
    );
    assert!(units.contains(&0) && units.contains(&4095), "{units:?}");
    // And they are the units the run compared: one 3072-element output row each.
    assert_eq!(
        r["baseline"]["checked"]["correctness_trial"]["compared"].as_u64(),
        Some(units.len() as u64 * 3072),
        "{r}"
    );
}

#[test]
#[ignore = "needs an NVIDIA GPU; run on the GPU machine with -- --ignored"]
fn one_wrong_launch_in_29_fails_the_tolerance_gate() {
    assert_caught("wrong_on_one_launch_in_29", &[SMALL], SMALL, "tolerance");
}

#[test]
#[ignore = "needs an NVIDIA GPU; run on the GPU machine with -- --ignored"]
fn an_unwritten_token_fails_the_written_gate() {
    assert_caught("leaves_last_token_unwritten", &[SMALL], SMALL, "written");
}

#[test]
#[ignore = "needs an NVIDIA GPU; run on the GPU machine with -- --ignored"]
fn a_write_past_the_end_fails_the_guard_gate() {
    assert_caught("writes_past_the_end", &[SMALL], SMALL, "guards");
}

#[test]
#[ignore = "needs an NVIDIA GPU; run on the GPU machine with -- --ignored"]
fn a_modified_input_fails_the_inputs_gate() {
    assert_caught("modifies_its_input", &[SMALL], SMALL, "inputs_unchanged");
}

#[test]
#[ignore = "needs an NVIDIA GPU; run on the GPU machine with -- --ignored"]
fn wrong_math_fails_the_tolerance_gate() {
    assert_caught("wrong_math", &[SMALL], SMALL, "tolerance");
}

#[test]
#[ignore = "needs an NVIDIA GPU; run on the GPU machine with -- --ignored"]
fn a_nan_fails_the_finite_gate() {
    assert_caught("emits_nan", &[SMALL], SMALL, "finite");
}

#[test]
#[ignore = "needs an NVIDIA GPU; run on the GPU machine with -- --ignored"]
fn accepting_a_rejection_row_fails_the_rejected_gate() {
    assert_caught("accepts_everything", &[REJECT], REJECT, "rejected");
}

#[test]
#[ignore = "needs an NVIDIA GPU; run on the GPU machine with -- --ignored"]
fn a_trapping_kernel_is_named_and_the_other_rows_still_run() {
    require_gpu();
    let (code, v) = run_fixture("traps", &[SMALL, OTHER]);
    assert_eq!(code, 2);
    let r = row(&v, SMALL);
    assert_eq!(r["correct"], false);
    let err = r["error"].as_str().unwrap_or("");
    assert!(
        err.contains("fuse_scale_shift") && err.contains(SMALL) && err.contains("candidate"),
        "the error names task, row and side: {err}"
    );
    assert!(
        v["worker_restarts"].as_u64().unwrap() >= 1,
        "a fresh worker took the rows left"
    );
    // The other row traps too (the fixture traps on every call), but it was attempted by the fresh
    // worker and reported under its own name: nothing recorded before is lost.
    let other = row(&v, OTHER);
    assert_eq!(other["correct"], false);
    assert!(
        other["error"].as_str().unwrap_or("").contains(OTHER),
        "{}",
        other["error"]
    );
}

#[test]
#[ignore = "needs an NVIDIA GPU; run on the GPU machine with -- --ignored"]
fn a_hanging_kernel_is_killed_by_the_watchdog() {
    require_gpu();
    // Build first, untimed: on a fresh machine nvcc alone can take longer than the bound below.
    // A run of the rejection row builds exactly what the timed run needs (support, baseline, the
    // fixture; `kpilot build` would also compile every candidate of the task) and launches
    // nothing that spins: the fixture returns the baseline's refusal first.
    let (code, v) = run_fixture("hangs", &[REJECT]);
    assert_eq!(row(&v, REJECT)["correct"], true, "exit {code}: {v}");
    let t0 = std::time::Instant::now();
    let (code, v) = run_fixture("hangs", &[SMALL]);
    assert_eq!(code, 2);
    let err = row(&v, SMALL)["error"].as_str().unwrap_or("").to_string();
    assert!(
        err.contains("no progress") && err.contains("fuse_scale_shift") && err.contains(SMALL),
        "{err}"
    );
    assert!(
        err.contains("correctness trial, candidate"),
        "the hang is pinned on the side that was running: {err}"
    );
    assert!(t0.elapsed().as_secs() < 120);
}

#[test]
#[ignore = "needs an NVIDIA GPU; run on the GPU machine with -- --ignored"]
fn row_timeout_shortens_the_watchdog_and_is_recorded() {
    require_gpu();
    // The same hanging fixture as above, under --row-timeout 4 instead of the scratch task's 20 s:
    // a lease or an agent loop can bound what a hanging candidate costs without a re-freeze.
    let (code, v) = run_fixture_with(
        "hangs",
        &["--trials", "7", "--row", SMALL, "--row-timeout", "4"],
    );
    assert_eq!(code, 2);
    let err = row(&v, SMALL)["error"].as_str().unwrap_or("").to_string();
    assert!(err.contains("no progress for 4 s"), "{err}");
    assert_eq!(v["timing"]["row_timeout_s"].as_f64(), Some(4.0));
}

#[test]
#[ignore = "needs an NVIDIA GPU; run on the GPU machine with -- --ignored"]
fn the_baseline_against_itself_is_the_same_everywhere() {
    // An A/A run: a copy of the baseline as the candidate must be correct and never called
    // faster or slower beyond the noise on a few rows.
    require_gpu();
    let d = tempfile::tempdir().unwrap();
    copy_dir(&repo().join("kernels"), &d.path().join("kernels"));
    let task = d.path().join("tasks/fuse_scale_shift");
    copy_dir(&repo().join("tasks/fuse_scale_shift"), &task);
    std::fs::copy(task.join("baseline.cu"), task.join("candidates/same.cu")).unwrap();
    freeze(d.path());
    let out = Command::new(kpilot_bin())
        .env("KPILOT_CACHE_DIR", repo().join(".kpilot-cache/build"))
        .arg("--root")
        .arg(d.path())
        .args([
            "task",
            "fuse_scale_shift",
            "--candidate",
            "same",
            "--trials",
            "7",
            "--json",
            "--row",
            SMALL,
            "--row",
            "qwen_fss_S4096_C3072_scale1x1x3072.bf16_shiftfull.bf16",
        ])
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    for r in v["rows"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["ran"] == true)
    {
        assert_eq!(r["correct"], true, "{}", r["name"]);
        assert_eq!(
            r["verdict"], "same",
            "A/A on {} gave {} ({})",
            r["name"], r["verdict"], r["speedup"]
        );
    }
    assert_eq!(
        out.status.code(),
        Some(1),
        "a partial run cannot pass the gate"
    );
}

/// A scratch root holding causal_conv3d_cat_pad whose "upstream" for `kpilot fidelity` is the
/// kernel source `upstream_src` (built as the shim), pinned to a one-file fake wheel.
fn fidelity_root(upstream_src: &Path) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let root = d.path();
    copy_dir(&repo().join("kernels"), &root.join("kernels"));
    let task = root.join("tasks/causal_conv3d_cat_pad");
    copy_dir(&repo().join("tasks/causal_conv3d_cat_pad"), &task);
    std::fs::copy(upstream_src, task.join("upstream/fixture.cu")).unwrap();
    let wheel = root.join("wheel/pkg");
    std::fs::create_dir_all(&wheel).unwrap();
    std::fs::write(wheel.join("k.cuh"), "pinned\n").unwrap();
    let sha = kpilot::task::sha256_hex(b"pinned\n");
    let toml = std::fs::read_to_string(task.join("task.toml")).unwrap();
    let files_at = toml.find("files = [").unwrap();
    let files_end = files_at + toml[files_at..].find("]\n").unwrap() + 2;
    let fid_at = toml.find("[fidelity]").unwrap();
    let fid_end = fid_at + toml[fid_at..].find("\n[build]").unwrap();
    let toml = format!(
        "{}files = [{{ path = \"pkg/k.cuh\", sha256 = \"{sha}\" }}]\n{}[fidelity]\nshim = \"upstream/fixture.cu\"\nshim_flags = [\"-O3\", \"-std=c++17\"]\n{}",
        &toml[..files_at],
        &toml[files_end..fid_at],
        &toml[fid_end..]
    );
    std::fs::write(task.join("task.toml"), toml).unwrap();
    let out = Command::new(kpilot_bin())
        .arg("--root")
        .arg(root)
        .args([
            "freeze",
            "causal_conv3d_cat_pad",
            "--reason",
            "GPU test scratch copy",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    d
}

fn fidelity_run(root: &Path, row: &str) -> (Option<i32>, Value) {
    let out = Command::new(kpilot_bin())
        .arg("--root")
        .arg(root)
        .args(["fidelity", "causal_conv3d_cat_pad", "--upstream"])
        .arg(root.join("wheel"))
        .args(["--row", row, "--json", "--replays", "5"])
        .output()
        .unwrap();
    let rec: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("no record: {}", String::from_utf8_lossy(&out.stderr)));
    (out.status.code(), rec)
}

const CP_BIG: &str = "prod_c256_t4_h240_w416__cache1";

#[test]
#[ignore = "needs an NVIDIA GPU and python3 with torch; run on the GPU machine with -- --ignored"]
fn fidelity_passes_a_baseline_against_itself_and_catches_a_faster_upstream() {
    require_gpu();
    // Upstream = the baseline's own source: within the band.
    let d = fidelity_root(&repo().join("tasks/causal_conv3d_cat_pad/baseline.cu"));
    let (code, rec) = fidelity_run(d.path(), CP_BIG);
    let row = &rec["rows"][0];
    assert_eq!(row["within_band"], Value::Bool(true), "{row}");
    assert_eq!(row["upstream"]["correct"], Value::Bool(true), "{row}");
    assert_eq!(code, Some(1), "a partial run never passes");
    // Upstream = v1, 1.3-1.8x faster than the baseline: the baseline is not faithful to it.
    let d = fidelity_root(&repo().join("tasks/causal_conv3d_cat_pad/candidates/v1.cu"));
    let (code, rec) = fidelity_run(d.path(), CP_BIG);
    let row = &rec["rows"][0];
    assert_eq!(row["within_band"], Value::Bool(false), "{row}");
    assert!(row["ratio"].as_f64().unwrap() > 1.2, "{row}");
    assert!(
        rec["verdict"]["failures"][0]
            .as_str()
            .unwrap()
            .contains(CP_BIG),
        "{}",
        rec["verdict"]
    );
    assert_eq!(code, Some(1));
}

#[test]
#[ignore = "needs an NVIDIA GPU and python3 with torch; run on the GPU machine with -- --ignored"]
fn fidelity_fails_an_upstream_whose_output_is_wrong() {
    require_gpu();
    let d = fidelity_root(&repo().join("tests/fixtures/fidelity_writes_nothing.cu"));
    let (code, rec) = fidelity_run(d.path(), CP_BIG);
    let up = &rec["rows"][0]["upstream"];
    assert_eq!(up["correct"], Value::Bool(false), "{up}");
    assert!(up["check"]["unwritten"].as_u64().unwrap() > 0, "{up}");
    assert_eq!(code, Some(2), "wrong output is a correctness failure");
}

#[test]
#[ignore = "needs an NVIDIA GPU; run on the GPU machine with -- --ignored"]
fn printed_results_are_output_not_results() {
    require_gpu();
    let (code, v) = run_fixture("prints_a_forged_result", &[SMALL]);
    assert_eq!(
        code, 1,
        "correct; a partial run with --trials 7 cannot pass the gate"
    );
    let r = row(&v, SMALL);
    assert_eq!(r["correct"], Value::Bool(true), "{r}");
    assert!(
        r["candidate"]["device_us"]["median"].as_f64().unwrap() > 0.5,
        "the worker's own timing, not the forged 0.01 us: {r}"
    );
    assert!(
        v["copy_bandwidth"]["tbps"].as_f64().unwrap() < 10.0,
        "the measured copy bandwidth, not the forged 99 TB/s"
    );
    let tail = r["output_tail"].to_string();
    assert!(
        tail.contains("stdout: {") && tail.contains("forged"),
        "the printed lines are kept as output: {tail}"
    );
    assert_eq!(v["protocol_violations"], 0);
}

#[test]
#[ignore = "needs an NVIDIA GPU; run on the GPU machine with -- --ignored"]
fn a_forged_message_on_the_result_channel_fails_the_row() {
    require_gpu();
    let (code, v) = run_fixture("writes_to_the_result_channel", &[SMALL]);
    assert_eq!(code, 2, "a protocol violation is a correctness failure");
    let r = row(&v, SMALL);
    let err = r["error"].as_str().unwrap_or_default();
    assert!(
        err.contains("protocol violation") && err.contains("secret"),
        "{r}"
    );
    assert_eq!(v["protocol_violations"], 1);
}

#[test]
#[ignore = "needs an NVIDIA GPU; run on the GPU machine with -- --ignored"]
fn a_worker_that_crashes_after_its_last_row_fails_the_run() {
    require_gpu();
    // Correct on every call; its library's destructor calls abort() once every row is reported.
    let (code, v) = run_fixture("crashes_after_its_last_row", &[SMALL, OTHER]);
    assert_eq!(
        code, 2,
        "a crash after the last report fails the run like a row would"
    );
    for name in [SMALL, OTHER] {
        assert_eq!(
            row(&v, name)["correct"],
            true,
            "{name}: the rows themselves were right"
        );
    }
    let why = v["exit_failures"][0].as_str().unwrap_or_default();
    assert!(
        why.contains("signal 6") && why.contains("after reporting its last row"),
        "{v}"
    );
    assert_eq!(v["gate"]["pass"], false);
    assert!(
        v["gate"]["reasons"]
            .as_array()
            .is_some_and(|r| r.iter().any(|x| x.as_str().unwrap_or("").contains(why))),
        "{}",
        v["gate"]
    );
}

#[test]
#[ignore = "needs an NVIDIA GPU; run on the GPU machine with -- --ignored"]
fn a_worker_that_hangs_after_its_last_row_fails_the_run() {
    require_gpu();
    // Correct on every call; its library's destructor spins once every row is reported.
    let (code, v) = run_fixture_with(
        "hangs_after_its_last_row",
        &["--trials", "7", "--row", SMALL, "--row-timeout", "4"],
    );
    assert_eq!(code, 2, "a hang after the last report fails the run");
    assert_eq!(row(&v, SMALL)["correct"], true);
    let why = v["exit_failures"][0].as_str().unwrap_or_default();
    assert!(
        why.contains("no progress for 4 s after reporting its last row"),
        "{v}"
    );
    assert_eq!(v["gate"]["pass"], false);
}

#[test]
#[ignore = "needs an NVIDIA GPU; run on the GPU machine with -- --ignored"]
fn work_left_running_fails_its_side_and_not_the_other() {
    require_gpu();
    let (code, v) = run_fixture("leaves_work_running", &[SMALL]);
    assert_eq!(
        code, 2,
        "work outside the harness's stream is a correctness failure"
    );
    let r = row(&v, SMALL);
    let problems = r["problems"].to_string();
    assert!(
        problems.contains("candidate: idle_after gate failed")
            && problems.contains("still running"),
        "{problems}"
    );
    assert!(
        !problems.contains("baseline:"),
        "the baseline is timed on an idle device and passes: {problems}"
    );
    assert!(
        r["candidate"]["lingering_us"].as_f64().unwrap() > 1000.0,
        "{r}"
    );
    assert!(
        r["baseline"]["lingering_us"].as_f64().unwrap() < 1000.0,
        "{r}"
    );
}

#[test]
#[ignore = "needs an NVIDIA GPU; run on the GPU machine with -- --ignored"]
fn work_left_running_after_timed_calls_fails_the_candidate_and_spares_the_stream_reference() {
    require_gpu();
    let (_, clean) = run_fixture("correct", &[SMALL]);
    let clean_stream = row(&clean, SMALL)["stream_us"]
        .as_f64()
        .expect("stream_us of the clean run");
    let (code, v) = run_fixture("lingers_only_in_timed_calls", &[SMALL]);
    assert_eq!(
        code, 2,
        "work left running after a timed call is a correctness failure"
    );
    let r = row(&v, SMALL);
    let problems = r["problems"].to_string();
    assert!(
        problems.contains("candidate: idle_after gate failed")
            && problems.contains("a timed sample"),
        "charged to the candidate, after a timed sample: {problems}"
    );
    assert!(!problems.contains("baseline:"), "{problems}");
    // The 2 ms left running per call would show in the stream reference had the card not been
    // drained before it: it stays the clean run's, within noise.
    let stream = r["stream_us"]
        .as_f64()
        .expect("stream_us kept for a failed row");
    assert!(
        stream < 1.5 * clean_stream && stream > clean_stream / 1.5,
        "stream reference {stream} µs against {clean_stream} µs in the clean run"
    );
}

#[test]
#[ignore = "needs an NVIDIA GPU; run on the GPU machine with -- --ignored"]
fn work_left_running_by_a_refusal_is_charged_to_the_candidate_not_the_baseline_after_it() {
    require_gpu();
    let (code, v) = run_fixture("refuses_and_leaves_work_running", &[SMALL]);
    assert_eq!(code, 2, "a refused production row is a correctness failure");
    let r = row(&v, SMALL);
    let problems = r["problems"].to_string();
    assert!(
        problems.contains("candidate: idle_after gate failed")
            && problems.contains("still running"),
        "{problems}"
    );
    assert!(
        !problems.contains("baseline:"),
        "the baseline runs after the candidate's drained call and passes: {problems}"
    );
    assert!(
        r["baseline"]["lingering_us"].as_f64().unwrap() < 1000.0,
        "{r}"
    );
}

#[test]
#[ignore = "needs an NVIDIA GPU and Nsight Compute; run on the GPU machine with -- --ignored"]
fn ncu_profiles_both_sides_of_one_row_and_records_the_digest() {
    require_gpu();
    let d = scratch_root("correct");
    let row = "qwen_fss_S4096_C3072_scale1x1x3072.bf16_shiftfull.bf16";
    let out = Command::new(kpilot_bin())
        .env("KPILOT_CACHE_DIR", repo().join(".kpilot-cache/build"))
        .arg("--root")
        .arg(d.path())
        .args([
            "ncu",
            "fuse_scale_shift",
            "--row",
            row,
            "--candidate",
            "correct",
            "--calls",
            "1",
            "--json",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["kind"], "ncu");
    for side in ["baseline", "candidate_digest"] {
        let s = &v[side];
        assert!(s["duration_us"].as_f64().unwrap() > 0.0, "{s}");
        assert!(s["dram_read_bytes"].as_f64().unwrap() > 0.0, "{s}");
        assert!(!s["bottleneck"].as_str().unwrap().is_empty(), "{s}");
    }
    // The fixture launches one kernel per call, named fx_fss.
    assert!(
        v["candidate_digest"]["kernels"][0]
            .as_str()
            .unwrap()
            .starts_with("fx_fss"),
        "{v}"
    );
    let md = std::fs::read_to_string(d.path().join(v["digest"].as_str().unwrap())).unwrap();
    assert!(md.contains("| bottleneck |"), "{md}");
    for c in v["csv"].as_array().unwrap() {
        let text = std::fs::read_to_string(d.path().join(c.as_str().unwrap())).unwrap();
        assert!(kpilot::ncu::csv::parse(&text).is_ok());
    }
    let ledger = std::fs::read_to_string(d.path().join("ledger/fuse_scale_shift.jsonl")).unwrap();
    assert!(ledger.lines().last().unwrap().contains("\"kind\":\"ncu\""));
}

#[test]
#[ignore = "needs an NVIDIA GPU; run on the GPU machine with -- --ignored"]
fn regress_reports_same_for_the_anchor_and_catches_a_slowed_candidate() {
    require_gpu();
    let d = scratch_root("correct");
    let kp = |args: &[&str]| {
        Command::new(kpilot_bin())
            .env("KPILOT_CACHE_DIR", repo().join(".kpilot-cache/build"))
            .arg("--root")
            .arg(d.path())
            .args(args)
            .output()
            .unwrap()
    };
    let big = "qwen_fss_S4096_C3072_scale1x1x3072.bf16_shiftfull.bf16";
    let out = kp(&[
        "task",
        "fuse_scale_shift",
        "--candidate",
        "correct",
        "--row",
        SMALL,
        "--row",
        big,
        "--json",
    ]);
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stderr)));
    let run = v["run_id"].as_str().unwrap();
    let out = kp(&[
        "accept",
        "fuse_scale_shift",
        "--run",
        run,
        "--reason",
        "GPU test anchor",
        "--allow-partial",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The anchored candidate itself: SAME on every row.
    let junit = d.path().join("junit.xml");
    let out = kp(&[
        "regress",
        "fuse_scale_shift",
        "--junit",
        junit.to_str().unwrap(),
    ]);
    let md = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{md}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(md.matches("| SAME").count(), 2, "{md}");
    assert!(!std::fs::read_to_string(&junit)
        .unwrap()
        .contains("<failure"));
    // The same name, now computing everything twice: a confirmed REGRESSION, exit 1.
    std::fs::copy(
        repo().join("tests/fixtures/slow_correct.cu"),
        d.path()
            .join("tasks/fuse_scale_shift/candidates/correct.cu"),
    )
    .unwrap();
    let out = kp(&[
        "regress",
        "fuse_scale_shift",
        "--junit",
        junit.to_str().unwrap(),
    ]);
    let md = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{md}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(md.contains("REGRESSION (rerun: regression"), "{md}");
    let x = std::fs::read_to_string(&junit).unwrap();
    assert!(
        x.contains("<failure message=\"regression\">REGRESSION: now"),
        "{x}"
    );
    let ledger = std::fs::read_to_string(d.path().join("ledger/fuse_scale_shift.jsonl")).unwrap();
    assert_eq!(ledger.matches("\"kind\":\"regress\"").count(), 2);
}
