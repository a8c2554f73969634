//! The rows file: the tensor shapes a task is called with. Production rows are facts captured
//! from real models; regression rows widen coverage; rejection rows must be refused by every side.

use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RowsFile {
    #[serde(rename = "row", default)]
    pub rows: Vec<toml::Spanned<RawRow>>,
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum RowKind {
    /// A captured production call: counts toward the headline and the per-row gate.
    Production,
    /// Coverage (layouts, dtypes, sizes): must pass every correctness gate; timed but not gated.
    Regression,
    /// Must be refused with KP_NOT_SUPPORTED by every side, writing nothing.
    Rejection,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRow {
    pub name: String,
    pub entry: String,
    pub kind: RowKind,
    #[serde(default)]
    pub model: Option<String>,
    /// Where the row comes from (capture file, commit, call).
    #[serde(default)]
    pub source: Option<String>,
    /// A production row whose signature equals another row's: listed for completeness, not run,
    /// and left out of the headline so that no shape counts twice.
    #[serde(default)]
    pub duplicate_of: Option<String>,
    /// Compulsory bytes as recorded with the capture; checked against the harness's own count.
    #[serde(default)]
    pub bytes_min: Option<u64>,
    #[serde(default)]
    pub scalars: BTreeMap<String, f64>,
    pub tensors: BTreeMap<String, toml::Spanned<RawTensor>>,
    #[serde(default)]
    pub note: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTensor {
    pub shape: Vec<i64>,
    pub dtype: String,
    /// Strides in elements; contiguous when omitted.
    #[serde(default)]
    pub stride: Option<Vec<i64>>,
    #[serde(default)]
    pub dist: Option<String>,
}
