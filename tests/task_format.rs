//! The task format: the real task loads with every production row as captured, and malformed
//! files fail with file, line and reason.

use kpilot::error::Error;
use kpilot::task::rows::RowKind;
use kpilot::task::Task;
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn fuse_scale_shift_loads_with_every_captured_production_row() {
    let t = Task::load(&repo().join("tasks"), "fuse_scale_shift").expect("the shipped task loads");
    let prod: Vec<_> = t
        .rows
        .iter()
        .filter(|r| r.kind == RowKind::Production)
        .collect();
    assert_eq!(prod.len(), 18, "all 18 captured calls are listed");
    assert_eq!(
        prod.iter().filter(|r| r.duplicate_of.is_none()).count(),
        15,
        "15 unique signatures"
    );
    // Every EP1 production row: scale_constant 0 and a full-shape shift, as captured.
    for r in prod
        .iter()
        .filter(|r| t.spec.entries[r.entry].name == "fuse_scale_shift_kernel")
    {
        assert_eq!(r.scalars, vec![0.0], "{}", r.name);
        assert_eq!(
            r.tensor("shift").unwrap().shape,
            r.tensor("x").unwrap().shape,
            "{}",
            r.name
        );
    }
    // The wan-ti2v non-contiguous fp32 scale view keeps its real strides.
    let ti2v = t
        .rows
        .iter()
        .find(|r| r.name.starts_with("wan-ti2v"))
        .unwrap();
    let s = ti2v.tensor("scale").unwrap();
    assert_eq!(s.stride, vec![334430208, 18432, 1]);
    assert!(!s.is_contiguous());
    assert_eq!(s.storage_elems(), 18143 * 18432 + 3072);
    // 2-D and 3-D scales are both present.
    assert!(prod
        .iter()
        .any(|r| r.tensor("scale").is_some_and(|s| s.shape.len() == 2)));
    assert!(prod
        .iter()
        .any(|r| r.tensor("scale").is_some_and(|s| s.shape.len() == 3)));
    // Bytes the harness counts equal the recorded bytes_min (checked at load; spot-check one).
    let wan = t
        .rows
        .iter()
        .find(|r| r.name.starts_with("wan-t2v"))
        .unwrap();
    assert_eq!(wan.bytes, 1_161_236_480);
    // Regression riders and rejection rows exist for each kind the issue names.
    let names: Vec<&str> = t.rows.iter().map(|r| r.name.as_str()).collect();
    for want in ["frames4d", "scalar_scale_shift", "fp16", "k1", "i64", "odd"] {
        assert!(
            names
                .iter()
                .any(|n| n.starts_with("reg_") && n.contains(want)),
            "missing a regression row for {want}"
        );
    }
    for want in ["shape_mismatch", "unsupported_dtype", "noncontiguous"] {
        assert!(
            names
                .iter()
                .any(|n| n.starts_with("rej_") && n.contains(want)),
            "missing a rejection row for {want}"
        );
    }
    assert_eq!(t.spec.build.flags, vec!["-O3", "-std=c++17", "-lineinfo"]);
    assert!(!t
        .spec
        .build
        .flags
        .iter()
        .any(|f| f.contains("fast-math") || f.contains("fast_math")));
}

/// A scratch task folder: the shipped task.toml and rows, with one edit applied.
fn scratch(
    edit_toml: impl Fn(String) -> String,
    edit_rows: impl Fn(String) -> String,
) -> (tempfile::TempDir, PathBuf) {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("t");
    std::fs::create_dir_all(dir.join("candidates")).unwrap();
    let src = repo().join("tasks/fuse_scale_shift");
    std::fs::write(
        dir.join("task.toml"),
        edit_toml(std::fs::read_to_string(src.join("task.toml")).unwrap()),
    )
    .unwrap();
    std::fs::write(
        dir.join("rows.toml"),
        edit_rows(std::fs::read_to_string(src.join("rows.toml")).unwrap()),
    )
    .unwrap();
    std::fs::write(dir.join("baseline.cu"), "// empty\n").unwrap();
    (d, dir)
}

fn load_err(dir: &Path) -> (String, usize, String) {
    match Task::load_dir(dir) {
        Err(Error::Input { file, line, msg }) => (
            file.file_name().unwrap().to_string_lossy().into_owned(),
            line,
            msg,
        ),
        Err(e) => panic!("expected an input error, got: {e}"),
        Ok(_) => panic!("expected an input error, but the task loaded"),
    }
}

fn line_containing(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l.contains(needle))
        .expect("needle present")
        + 1
}

#[test]
fn a_tolerance_under_a_long_dtype_name_is_used_not_ignored() {
    let (_d, dir) = scratch(
        |t| t.replace("[tolerance.bf16]", "[tolerance.bfloat16]"),
        |r| r,
    );
    let task = Task::load_dir(&dir).unwrap();
    let tol = task
        .tolerance(kpilot::dtype::DType::Bf16)
        .expect("[tolerance.bfloat16] is bf16's tolerance");
    assert!(tol.atol > 0.0);
    // Two names for one dtype: which one applies would be a guess, so it is refused.
    let (_d, dir) = scratch(
        |t| {
            t.replace(
                "[tolerance.bf16]",
                "[tolerance.bfloat16]\natol = 1.0\nrtol = 1.0\n\n[tolerance.bf16]",
            )
        },
        |r| r,
    );
    let (file, _, msg) = load_err(&dir);
    assert_eq!(file, "task.toml");
    assert!(msg.contains("both name bf16"), "{msg}");
}

/// The first row's x tensor, given another shape and stride.
fn first_x(shape: &str, stride: &str) -> impl Fn(String) -> String {
    let (shape, stride) = (shape.to_string(), stride.to_string());
    move |r: String| {
        r.replacen(
            "shape = [1, 8424, 3072]\ndtype = \"bf16\"\nstride = [25878528, 3072, 1]",
            &format!("shape = {shape}\ndtype = \"bf16\"\nstride = {stride}"),
            1,
        )
    }
}

#[test]
fn size_arithmetic_that_overflows_or_asks_for_terabytes_is_refused_with_the_numbers() {
    for (shape, stride, says) in [
        // numel 2^64 wraps to 0 in unchecked arithmetic.
        (
            "[1, 4294967296, 4294967296]",
            "[1, 4294967296, 1]",
            "more than 2^64 elements",
        ),
        // (n-1) * stride wraps to storage of 1 element.
        (
            "[1, 5, 3072]",
            "[1, 4611686018427387904, 1]",
            "reaches past 2^64",
        ),
        // 10^12 elements: 2 TB.
        (
            "[1, 1000000, 1000000]",
            "[1, 1000000, 1]",
            "GiB kpilot allows",
        ),
        // A strided view reaching 3.2 TB.
        ("[1, 8424, 3072]", "[1, 200000000, 1]", "GiB kpilot allows"),
    ] {
        let (_d, dir) = scratch(|t| t, first_x(shape, stride));
        let text = std::fs::read_to_string(dir.join("rows.toml")).unwrap();
        assert!(text.contains(shape), "the edit applied");
        let (file, line, msg) = load_err(&dir);
        assert_eq!(file, "rows.toml");
        assert!(line > 1, "{msg}");
        assert!(
            msg.contains(says) && msg.contains("tensor 'x'"),
            "{shape} {stride}: {msg}"
        );
    }
}

#[test]
fn a_toml_syntax_error_names_file_and_line() {
    let (_d, dir) = scratch(
        |t| t.replace("min_geomean = 1.0", "min_geomean = = 1.0"),
        |r| r,
    );
    let (file, line, msg) = load_err(&dir);
    assert_eq!(file, "task.toml");
    let text = std::fs::read_to_string(dir.join("task.toml")).unwrap();
    assert_eq!(line, line_containing(&text, "min_geomean = = 1.0"));
    assert!(!msg.is_empty());
}

#[test]
fn an_unknown_key_is_an_error_not_ignored() {
    let (_d, dir) = scratch(
        |t| t.replace("min_geomean = 1.0", "min_geomean = 1.0\nmin_row = 0.5"),
        |r| r,
    );
    let (file, line, msg) = load_err(&dir);
    assert_eq!(file, "task.toml");
    assert!(line > 1);
    assert!(msg.contains("min_row"), "{msg}");
}

#[test]
fn zero_units_compared_after_a_sample_is_refused() {
    let (_d, dir) = scratch(
        |t| t.replace("trials = 9", "trials = 9\nsample_units = 0"),
        |r| r,
    );
    let (file, _, msg) = load_err(&dir);
    assert_eq!(file, "task.toml");
    assert!(msg.contains("sample_units must be at least 1"), "{msg}");
}

#[test]
fn fewer_than_seven_trials_is_refused() {
    let (_d, dir) = scratch(|t| t.replace("trials = 9", "trials = 5"), |r| r);
    let (_, _, msg) = load_err(&dir);
    assert!(msg.contains("at least 7"), "{msg}");
}

#[test]
fn a_watchdog_outside_a_second_to_a_day_is_refused_with_the_value() {
    for bad in ["0.5", "0", "-3", "1e20", "nan"] {
        let (_d, dir) = scratch(
            |t| t.replace("row_timeout_s = 180", &format!("row_timeout_s = {bad}")),
            |r| r,
        );
        let (file, _, msg) = load_err(&dir);
        assert_eq!(file, "task.toml");
        assert!(
            msg.contains("timing.row_timeout_s = ") && msg.contains("use 1 to 86400 seconds"),
            "{bad}: {msg}"
        );
    }
}

#[test]
fn per_side_or_architecture_flags_cannot_be_smuggled_in() {
    let (_d, dir) = scratch(
        |t| {
            t.replace(
                "\"-lineinfo\"]",
                "\"-lineinfo\", \"-gencode=arch=compute_80,code=sm_80\"]",
            )
        },
        |r| r,
    );
    let (_, _, msg) = load_err(&dir);
    assert!(msg.contains("may not contain"), "{msg}");
}

#[test]
fn a_row_error_names_the_row_and_its_line() {
    let (_d, dir) = scratch(
        |t| t,
        |r| {
            r.replacen(
                "shape = [1, 33, 1024]",
                "shape = [1, 33, 1024]\nstride = [1, 1]",
                1,
            )
        },
    );
    let (file, line, msg) = load_err(&dir);
    assert_eq!(file, "rows.toml");
    assert!(
        msg.contains("reg_fss_scalar_scale_shift_k1_bf16")
            && msg.contains("stride has 2 entries but shape has 3"),
        "{msg}"
    );
    let text = std::fs::read_to_string(dir.join("rows.toml")).unwrap();
    let row_line = line_containing(&text, "name = \"reg_fss_scalar_scale_shift_k1_bf16\"");
    assert!(
        line > row_line && line < row_line + 10,
        "line {line} should point into the row at {row_line}"
    );
}

#[test]
fn bytes_that_disagree_with_the_capture_are_an_error() {
    let (_d, dir) = scratch(
        |t| t,
        |r| r.replacen("bytes_min = 155277312", "bytes_min = 155277313", 1),
    );
    let (_, _, msg) = load_err(&dir);
    assert!(
        msg.contains("bytes_min = 155277313 but the tensors move 155277312"),
        "{msg}"
    );
}

#[test]
fn unknown_tensors_missing_scalars_and_bad_dtypes_are_named() {
    let (_d, dir) = scratch(
        |t| t,
        |r| r.replacen("[row.tensors.scale]", "[row.tensors.scael]", 1),
    );
    assert!(load_err(&dir)
        .2
        .contains("tensor 'scael' is not a tensor of entry"));
    let (_d, dir) = scratch(
        |t| t,
        |r| r.replacen("scalars = { scale_constant = 0.0 }", "scalars = { }", 1),
    );
    assert!(load_err(&dir)
        .2
        .contains("scalar 'scale_constant' is missing"));
    let (_d, dir) = scratch(
        |t| t,
        |r| r.replacen("dtype = \"bf16\"", "dtype = \"bf61\"", 1),
    );
    assert!(load_err(&dir).2.contains("unknown dtype 'bf61'"));
}

#[test]
fn a_production_row_the_op_does_not_define_is_refused_at_load() {
    // A 4-D scale whose frame count does not divide L.
    let (_d, dir) = scratch(
        |t| t,
        |r| r.replacen("shape = [2, 4, 1, 512]", "shape = [2, 5, 1, 512]", 1),
    );
    let (_, _, msg) = load_err(&dir);
    assert!(
        msg.contains("reg_fss_frames4d") && msg.contains("L % F == 0"),
        "{msg}"
    );
}

#[test]
fn duplicate_names_and_dangling_duplicates_are_errors() {
    let (_d, dir) = scratch(
        |t| t,
        |r| {
            r.replacen(
                "name = \"reg_fss_tiny_L1_C17_bf16\"",
                "name = \"reg_fss_odd_B3_L33_C1001_bf16\"",
                1,
            )
        },
    );
    assert!(load_err(&dir).2.contains("same name as the row at line"));
    let (_d, dir) = scratch(
        |t| t,
        |r| {
            r.replacen(
                "duplicate_of = \"qwen-edit_fss_S189",
                "duplicate_of = \"nope_S189",
                1,
            )
        },
    );
    assert!(load_err(&dir).2.contains("which is no row"));
}

#[test]
fn a_missing_task_lists_the_tasks_there_are() {
    match Task::load(&repo().join("tasks"), "no_such_task") {
        Err(Error::Cli(m)) => assert!(m.contains("fuse_scale_shift"), "{m}"),
        other => panic!(
            "expected a usage error, got {:?}",
            other.map(|t| t.spec.task.name)
        ),
    }
}
