//! What a CI system reads from `kpilot regress`: a markdown summary (for `$GITHUB_STEP_SUMMARY`
//! and a PR comment) and JUnit XML (one testcase per task and row).

use crate::record::{RegressRecord, RegressRow};
use std::fmt::Write;

fn pct(x: f64) -> String {
    if x.is_finite() {
        format!("{:+.1}%", (x - 1.0) * 100.0)
    } else {
        "-".into()
    }
}

pub(crate) fn row_line(r: &RegressRow) -> String {
    format!(
        "| {} | {} | {:.2} | {:.2} | {} [{}, {}] | {} | ±{:.1}% | {}{} |",
        r.name,
        if r.production { "prod" } else { "reg" },
        r.anchor_us,
        r.now_us,
        pct(r.ratio),
        pct(r.ci[0]),
        pct(r.ci[1]),
        pct(r.baseline_ratio),
        r.threshold * 100.0,
        r.verdict.to_uppercase(),
        match (&r.rerun_verdict, r.rerun_ratio) {
            (Some(v), Some(x)) => format!(" (rerun: {v}, {})", pct(x)),
            _ => String::new(),
        }
    )
}

pub fn markdown(records: &[RegressRecord]) -> String {
    let mut s = String::from("## kpilot regress\n\n");
    for r in records {
        let _ = writeln!(
            s,
            "### {} on {}{}: {}\n",
            r.task,
            r.card,
            r.shard
                .as_ref()
                .map(|x| format!(" (shard {x})"))
                .unwrap_or_default(),
            r.status.to_uppercase()
        );
        if !r.note.is_empty() {
            let _ = writeln!(s, "{}\n", r.note);
        }
        if let (Some(a), Some(c)) = (&r.anchor_run_id, &r.candidate) {
            let _ = writeln!(
                s,
                "candidate `{c}` against anchor run {a}; this invocation's runs: {}{}\n",
                r.run_ids.join(", "),
                if r.rerun_ids.is_empty() {
                    String::new()
                } else {
                    format!(", reruns {}", r.rerun_ids.join(", "))
                }
            );
        }
        if r.rows.is_empty() {
            continue;
        }
        s += "| row | kind | anchor µs | now µs | change [95% CI] | baseline change | threshold | verdict |\n|---|---|---|---|---|---|---|---|\n";
        for x in &r.rows {
            s += &row_line(x);
            s.push('\n');
        }
        s.push('\n');
    }
    s
}

fn esc(x: &str) -> String {
    x.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

pub fn junit(records: &[RegressRecord]) -> String {
    let mut s = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"kpilot regress\">\n",
    );
    for r in records {
        let failing =
            |x: &RegressRow| matches!(x.verdict.as_str(), "regression" | "incorrect" | "missing");
        let fails = r.rows.iter().filter(|x| failing(x)).count()
            + usize::from(r.rows.is_empty() && r.status != "ok");
        let _ = writeln!(
            s,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{fails}\">",
            esc(&format!("{} on {}", r.task, r.card)),
            r.rows.len().max(1)
        );
        if r.rows.is_empty() {
            let _ = write!(
                s,
                "    <testcase classname=\"{}\" name=\"{}\"",
                esc(&r.task),
                esc(&r.status)
            );
            if r.status == "ok" {
                s += "/>\n";
            } else {
                let _ = writeln!(
                    s,
                    "><failure message=\"{}\">{}</failure></testcase>",
                    esc(&r.status),
                    esc(&r.note)
                );
            }
        }
        for x in &r.rows {
            let _ = write!(
                s,
                "    <testcase classname=\"{}\" name=\"{}\"",
                esc(&r.task),
                esc(&x.name)
            );
            if failing(x) {
                let text = format!(
                    "{}: now {:.2} us, anchor {:.2} us, change {} [{}, {}], threshold {:.1}%, baseline change {}; rerun: {}. {}",
                    x.verdict.to_uppercase(),
                    x.now_us,
                    x.anchor_us,
                    pct(x.ratio),
                    pct(x.ci[0]),
                    pct(x.ci[1]),
                    x.threshold * 100.0,
                    pct(x.baseline_ratio),
                    x.rerun_verdict.as_deref().unwrap_or("none"),
                    x.detail
                );
                let _ = writeln!(
                    s,
                    "><failure message=\"{}\">{}</failure></testcase>",
                    esc(&x.verdict),
                    esc(&text)
                );
            } else {
                s += "/>\n";
            }
        }
        s += "  </testsuite>\n";
    }
    s += "</testsuites>\n";
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(verdict: &str) -> RegressRecord {
        RegressRecord {
            schema: 1,
            run_id: "r".into(),
            time_utc: "t".into(),
            task: "fuse_scale_shift".into(),
            card: "NVIDIA H200".into(),
            shard: None,
            devices: vec![0],
            anchor_run_id: Some("a".into()),
            candidate: Some("v1".into()),
            run_ids: vec!["x".into()],
            rerun_ids: vec![],
            status: if verdict == "regression" {
                "regression".into()
            } else {
                "ok".into()
            },
            note: String::new(),
            rows: vec![RegressRow {
                name: "row<1>".into(),
                production: true,
                anchor_us: 10.0,
                now_us: 11.0,
                ratio: 1.1,
                ci: [1.08, 1.12],
                baseline_ratio: 1.0,
                threshold: 0.02,
                verdict: verdict.into(),
                rerun_verdict: Some(verdict.into()),
                rerun_ratio: Some(1.1),
                detail: String::new(),
            }],
            git: crate::record::GitInfo {
                commit: None,
                dirty: None,
                changed: None,
                source: "test".into(),
                kpilot_sha256: None,
            },
        }
    }

    #[test]
    fn junit_has_a_failing_testcase_per_regressed_row_and_escapes_names() {
        let x = junit(&[rec("regression")]);
        assert!(x.contains("failures=\"1\""), "{x}");
        assert!(x.contains("name=\"row&lt;1&gt;\""), "{x}");
        assert!(
            x.contains("REGRESSION: now 11.00 us, anchor 10.00 us, change +10.0% [+8.0%, +12.0%]"),
            "{x}"
        );
        let ok = junit(&[rec("same")]);
        assert!(
            ok.contains("failures=\"0\"") && !ok.contains("<failure"),
            "{ok}"
        );
    }

    #[test]
    fn markdown_is_a_table_per_task() {
        let m = markdown(&[rec("regression")]);
        assert!(
            m.contains("### fuse_scale_shift on NVIDIA H200: REGRESSION"),
            "{m}"
        );
        assert!(m.contains("| row<1> | prod | 10.00 | 11.00 | +10.0% [+8.0%, +12.0%] | +0.0% | ±2.0% | REGRESSION (rerun: regression, +10.0%) |"), "{m}");
    }
}
