//! Nsight Compute's CSV (`ncu --csv --print-units base`, the default "details" page): one line
//! per kernel launch and metric, with the launch's ID, kernel name, block and grid. Values may
//! carry thousands separators; units are converted to bytes, nanoseconds or plain numbers.

use std::collections::BTreeMap;

/// One profiled kernel launch.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Launch {
    pub id: u64,
    pub kernel: String,
    pub block: String,
    pub grid: String,
    /// Metric name -> value in base units (bytes, nanoseconds, %, counts).
    pub metrics: BTreeMap<String, f64>,
    /// Metrics ncu reported as unavailable ("n/a") for this launch.
    pub missing: Vec<String>,
}

impl Launch {
    pub fn get(&self, metric: &str) -> Option<f64> {
        self.metrics.get(metric).copied()
    }
}

/// Scale of a unit to kpilot's base (bytes, nanoseconds); 1 for everything else.
fn scale(unit: &str) -> f64 {
    match unit {
        "byte" => 1.0,
        "Kbyte" | "KB" => 1e3,
        "Mbyte" | "MB" => 1e6,
        "Gbyte" | "GB" => 1e9,
        "Tbyte" | "TB" => 1e12,
        "KiB" => 1024.0,
        "MiB" => 1024.0 * 1024.0,
        "GiB" => 1024.0 * 1024.0 * 1024.0,
        "ns" | "nsecond" => 1.0,
        "us" | "usecond" => 1e3,
        "ms" | "msecond" => 1e6,
        "s" | "second" => 1e9,
        _ => 1.0,
    }
}

/// Parses ncu's CSV. Lines before the header (ncu's own `==PROF==` messages, the program's
/// output) are skipped. An error names the line.
pub fn parse(text: &str) -> Result<Vec<Launch>, String> {
    let Some(start) = text.find("\"ID\",") else {
        return Err(
            "no ncu CSV header (\"ID\",...) in the output: did ncu profile anything?".into(),
        );
    };
    let header_line = text[..start].lines().count() + 1;
    let mut rdr = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(&text.as_bytes()[start..]);
    let headers = rdr
        .headers()
        .map_err(|e| format!("line {header_line}: {e}"))?
        .clone();
    let col = |name: &str| {
        headers.iter().position(|h| h == name).ok_or_else(|| {
            format!("line {header_line}: no column \"{name}\" in the ncu CSV header")
        })
    };
    let (c_id, c_kernel, c_block, c_grid, c_metric, c_unit, c_value) = (
        col("ID")?,
        col("Kernel Name")?,
        col("Block Size")?,
        col("Grid Size")?,
        col("Metric Name")?,
        col("Metric Unit")?,
        col("Metric Value")?,
    );
    let mut launches: Vec<Launch> = Vec::new();
    for (k, rec) in rdr.records().enumerate() {
        let line = header_line + 1 + k;
        let rec = rec.map_err(|e| format!("line {line}: {e}"))?;
        if rec.len() <= c_value {
            if rec.iter().all(|f| f.trim().is_empty()) {
                continue;
            }
            return Err(format!(
                "line {line}: {} fields, the header has {}",
                rec.len(),
                headers.len()
            ));
        }
        let id: u64 = rec[c_id]
            .trim()
            .parse()
            .map_err(|_| format!("line {line}: ID '{}' is not a number", &rec[c_id]))?;
        if launches.last().is_none_or(|l| l.id != id) {
            launches.push(Launch {
                id,
                kernel: rec[c_kernel].to_string(),
                block: rec[c_block].to_string(),
                grid: rec[c_grid].to_string(),
                ..Default::default()
            });
        }
        let l = launches.last_mut().expect("pushed above");
        let name = rec[c_metric].to_string();
        let raw = rec[c_value].trim().replace(',', "");
        if raw.is_empty() || raw == "n/a" {
            l.missing.push(name);
            continue;
        }
        let v: f64 = raw.parse().map_err(|_| {
            format!(
                "line {line}: metric {name} has value '{}', not a number",
                &rec[c_value]
            )
        })?;
        l.metrics.insert(name, v * scale(&rec[c_unit]));
    }
    if launches.is_empty() {
        return Err("the ncu CSV holds a header but no kernel launch".into());
    }
    Ok(launches)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_h100_capture_parses_with_units_and_separators() {
        let text = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("ncu/fuse_scale_shift__wan-t2v__h100.csv"),
        )
        .unwrap();
        let l = parse(&text).unwrap();
        assert_eq!(l.len(), 2);
        assert!(l[0].kernel.contains("fss_tile_vec_all_kernel"));
        assert_eq!(l[0].get("dram__bytes_read.sum"), Some(774_185_472.0));
        assert_eq!(l[0].block, "(128, 1, 1)");
        assert!(l[1].kernel.contains("fss_rows_kernel"));
        // 400.6 us of the baseline, in nanoseconds.
        let t = l[0].get("gpu__time_duration.sum").unwrap();
        assert!((t - 400_600.0).abs() < 1_000.0, "{t}");
    }

    #[test]
    fn preamble_is_skipped_and_bad_lines_are_named() {
        let ok = "==PROF== Connected\nhello\n\"ID\",\"Kernel Name\",\"Block Size\",\"Grid Size\",\"Metric Name\",\"Metric Unit\",\"Metric Value\"\n\"0\",\"k\",\"(1, 1, 1)\",\"(2, 1, 1)\",\"gpu__time_duration.sum\",\"usecond\",\"1.5\"\n\"0\",\"k\",\"(1, 1, 1)\",\"(2, 1, 1)\",\"x\",\"\",\"n/a\"\n";
        let l = parse(ok).unwrap();
        assert_eq!(l[0].get("gpu__time_duration.sum"), Some(1500.0));
        assert_eq!(l[0].missing, vec!["x".to_string()]);
        let bad = ok.replace("\"1.5\"", "\"fast\"");
        let e = parse(&bad).unwrap_err();
        assert!(e.starts_with("line 4:") && e.contains("fast"), "{e}");
        assert!(parse("no csv here").is_err());
    }
}
