//! `kpilot report <task> <run> [--svg FILE]`: one recorded run as markdown (card, commit, flags,
//! per-row table with the CI and % of copy bandwidth) and, with --svg, a chart drawn with the
//! plotters crate: each timed row's device speedup with its 95% CI whiskers, and below it the
//! candidate's % of the copy bandwidth measured in the same run.

use crate::error::{Error, Result};
use crate::record::{RunRecord, RunRow};
use plotters::prelude::*;
use std::fmt::Write;
use std::path::Path;

fn timed(r: &RunRecord) -> Vec<&RunRow> {
    // Production rows first, in file order, then the others.
    let mut v: Vec<&RunRow> = r
        .rows
        .iter()
        .filter(|x| x.device.as_ref().is_some_and(|d| d.speedup.is_finite()))
        .collect();
    v.sort_by_key(|x| !x.production);
    v
}

pub fn markdown(r: &RunRecord) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "## {} run {}: baseline vs {}\n\n- card: {} (copy bandwidth {} TB/s)\n- commit: {}{}\n- nvcc {} flags: `{}`\n- headline (device, geomean over production rows): {}\n- gate: {}\n",
        r.task,
        r.run_id,
        r.candidate,
        r.device.name,
        r.copy_bandwidth
            .tbps
            .map(|t| format!("{t:.2}"))
            .unwrap_or_else(|| "-".into()),
        r.git.commit.as_deref().unwrap_or("unknown"),
        match r.git.dirty {
            Some(true) => " (dirty)",
            _ => "",
        },
        r.build.nvcc_version,
        r.build.flags.join(" "),
        match (r.headline.device_geomean, r.headline.device_ci) {
            (Some(g), Some([lo, hi])) => format!("{g:.4}x [95% CI {lo:.4}, {hi:.4}]"),
            (Some(g), None) => format!("{g:.4}x"),
            _ => "none (partial run)".into(),
        },
        if r.gate.pass { "PASS" } else { "FAIL" }
    );
    s += "| row | kind | baseline µs | candidate µs | speedup [95% CI] | verdict | % of copy | % of stream |\n|---|---|---|---|---|---|---|---|\n";
    for x in &r.rows {
        let med = |side: &Option<crate::record::SideRecord>| {
            side.as_ref()
                .and_then(|s| s.device_us.as_ref())
                .map(|d| format!("{:.2}", d.median))
                .unwrap_or_else(|| "-".into())
        };
        let sp = x
            .device
            .as_ref()
            .filter(|d| d.speedup.is_finite())
            .map(|d| format!("{:.3}x [{:.3}, {:.3}]", d.speedup, d.ci_low, d.ci_high))
            .unwrap_or_else(|| "-".into());
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {sp} | {} | {} | {} |",
            x.name,
            if x.production { "prod" } else { "reg" },
            med(&x.baseline),
            med(&x.candidate),
            x.device
                .as_ref()
                .map(|d| d.verdict.as_str())
                .unwrap_or(if x.ran { "-" } else { "not run" }),
            x.pct_of_copy_bandwidth
                .map(|p| format!("{p:.1}"))
                .unwrap_or_else(|| "-".into()),
            x.pct_of_stream
                .map(|p| format!("{p:.1}"))
                .unwrap_or_else(|| "-".into())
        );
    }
    s
}

fn plot_err<E: std::fmt::Display>(e: E) -> Error {
    Error::Internal(format!("drawing the chart: {e}"))
}

/// Draws the run's chart into `path` (SVG).
pub fn svg(r: &RunRecord, path: &Path) -> Result<()> {
    let rows = timed(r);
    if rows.is_empty() {
        return Err(Error::Cli(format!(
            "run {} has no timed row to draw",
            r.run_id
        )));
    }
    let n = rows.len();
    let root = SVGBackend::new(path, (1100, 700)).into_drawing_area();
    root.fill(&WHITE).map_err(plot_err)?;
    let (top, bottom) = root.split_vertically(430);
    let lo = rows
        .iter()
        .map(|x| x.device.as_ref().map_or(1.0, |d| d.ci_low))
        .fold(1.0f64, f64::min);
    let hi = rows
        .iter()
        .map(|x| x.device.as_ref().map_or(1.0, |d| d.ci_high))
        .fold(1.0f64, f64::max);
    let pad = ((hi - lo) * 0.1).max(0.02);
    let mut chart = ChartBuilder::on(&top)
        .caption(
            format!(
                "{} {} vs baseline on {} (run {})",
                r.task, r.candidate, r.device.name, r.run_id
            ),
            ("sans-serif", 18),
        )
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(60)
        .build_cartesian_2d(-0.5f64..(n as f64 - 0.5), (lo - pad)..(hi + pad))
        .map_err(plot_err)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(0)
        .y_desc("device speedup (95% CI)")
        .draw()
        .map_err(plot_err)?;
    chart
        .draw_series(LineSeries::new(
            vec![(-0.5, 1.0), (n as f64 - 0.5, 1.0)],
            BLACK.mix(0.5),
        ))
        .map_err(plot_err)?;
    for (i, x) in rows.iter().enumerate() {
        let d = x.device.as_ref().expect("timed rows have a comparison");
        let color = match d.verdict.as_str() {
            "faster" => GREEN,
            "slower" => RED,
            _ => BLUE,
        };
        let xi = i as f64;
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(xi, d.ci_low), (xi, d.ci_high)],
                color.stroke_width(2),
            )))
            .map_err(plot_err)?;
        chart
            .draw_series(std::iter::once(Circle::new(
                (xi, d.speedup),
                4,
                color.filled(),
            )))
            .map_err(plot_err)?;
    }
    let top_pct = rows
        .iter()
        .filter_map(|x| x.pct_of_copy_bandwidth)
        .fold(100.0f64, f64::max)
        * 1.05;
    let mut bars = ChartBuilder::on(&bottom)
        .margin(10)
        .x_label_area_size(20)
        .y_label_area_size(60)
        .build_cartesian_2d(-0.5f64..(n as f64 - 0.5), 0f64..top_pct)
        .map_err(plot_err)?;
    bars.configure_mesh()
        .disable_x_mesh()
        .x_labels(0)
        .y_desc("candidate % of copy bandwidth")
        .draw()
        .map_err(plot_err)?;
    for (i, x) in rows.iter().enumerate() {
        if let Some(p) = x.pct_of_copy_bandwidth {
            let xi = i as f64;
            let c = if x.production {
                BLUE.mix(0.7)
            } else {
                BLACK.mix(0.3)
            };
            bars.draw_series(std::iter::once(Rectangle::new(
                [(xi - 0.35, 0.0), (xi + 0.35, p)],
                c.filled(),
            )))
            .map_err(plot_err)?;
        }
    }
    root.present().map_err(plot_err)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recorded_run_becomes_markdown_and_an_svg() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let runs = crate::regress::anchor::runs(root, "causal_conv3d_cat_pad").unwrap();
        let r = runs
            .iter()
            .find(|r| r.run_id == "20261130T194254Z-56f5ce6f")
            .expect("the anchored run");
        let md = markdown(r);
        assert!(
            md.contains("| prod_c256_t4_h240_w416__cache2 | prod | 288.96 | 176.98 |"),
            "{md}"
        );
        assert!(md.contains("card: NVIDIA H200"), "{md}");
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("run.svg");
        svg(r, &p).unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(
            text.starts_with("<svg") && text.contains("device speedup"),
            "{}",
            &text[..200.min(text.len())]
        );
        assert!(
            text.matches("<circle").count() >= 17,
            "a point per timed row"
        );
    }
}
