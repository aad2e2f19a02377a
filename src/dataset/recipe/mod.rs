//! Recipes: TOML files that describe a dataset (seed, splits, mixtures, shard size).
//!
//! ```toml
//! name = "quickstart"
//! seed = 1234
//! shard_size = 1000
//! # trace_format = "full"                        # full (default) | terse | answer_only | long
//!
//! [[splits]]
//! name = "train"
//! size = 2000
//! ops = "2-10"                                     # uniform over a range, or one op
//! # op_weights = { "2-4" = 0.2, "5-7" = 0.3, "8-10" = 0.5 }   # tier shares, spread evenly
//! templates = { zoo = 1.0 }
//! modes = { forward = 0.5, reverse = 0.5 }
//!
//! [[splits]]
//! name = "pretrain"
//! tokens = 2_000_000                               # a token budget instead of `size`
//! op_weights = { "2-4" = 0.2, "5-7" = 0.3, "8-10" = 0.5 }   # shares of the tokens
//!
//! [[splits]]
//! name = "test_id"
//! held_out = true                                  # drawn only from the held-out id bucket
//! size = 200
//! ops = "2-10"
//! ```
//!
//! A split may instead list `[[splits.mix]]` components (each with `share`, `ops` or
//! `op_weights`, `templates`, `modes`) for mixtures that are not a product, such as "zoo over
//! op 2–20 plus school only at op 2". Parsing resolves everything into a [`Recipe`] whose JSON
//! form (and its SHA-256) is recorded in every artifact.
//!
//! A split's budget is `size = N` rows or `tokens = N` tokens: exactly one, a whole number of
//! at least 1. With `size` every (template, op, mode) cell gets its share of the rows, exactly.
//! With `tokens` it gets its share of the tokens by the same largest-remainder rule, and takes
//! rows in its usual order (after dedup and the held-out rule) until its tokens reach that
//! share: the row that reaches it is kept, so a cell overshoots by less than one row and the
//! split by less than one row per cell. A row costs `prompt + completion` under the domain
//! tokenizer (the one `dagmath tokenizer` writes) plus one EOS. The resolved rows and tokens of
//! every cell are recorded in the manifest.
//!
//! `trace_format` picks how the gold traces are written (the `solution` and `completion`
//! columns; the prompt is the same in every format): `full` (SPEC §3, the default), `terse`
//! (the arithmetic without the `Define … as X;` prose), `long` (each step followed by a check
//! sentence) or `answer_only` (no trace; only the outcome can be verified). It is recorded in
//! the manifest, and `audit`, `eval` and the RL pool read completions in it (see
//! [`TraceFormat`]). Left out of the resolved recipe when `full`, so older recipes keep
//! their hash.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::composer::{Mode, Noise};
use crate::template::TemplateSet;
use crate::trace::TraceFormat;
pub use mix::{parse_op_range, OpRangeError};
use mix::{resolve_component, OpsValue, RawComponent};

mod mix;

/// Default rows per shard.
pub const DEFAULT_SHARD_SIZE: u64 = 100_000;
/// Default rows per Parquet row group.
pub const DEFAULT_ROW_GROUP_SIZE: usize = 5_000;

/// A validated, fully resolved recipe.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recipe {
    pub name: String,
    pub description: String,
    pub seed: u64,
    pub shard_size: u64,
    pub row_group_size: usize,
    /// How the gold traces are written (`full` when absent; skipped then, so the hash of a
    /// recipe without the key is unchanged).
    #[serde(default, skip_serializing_if = "TraceFormat::is_full")]
    pub trace_format: TraceFormat,
    pub splits: Vec<SplitSpec>,
}

/// One split: a budget and a mixture over (template, op, mode) cells.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SplitSpec {
    pub name: String,
    /// Flattened so a `size` split serialises as before (`"size": N`) and keeps its hash.
    #[serde(flatten)]
    pub budget: Budget,
    /// Evaluation splits draw only from the held-out id bucket, training splits never do.
    pub held_out: bool,
    pub mix: Vec<Component>,
}

/// How big a split is. The mixture apportions the budget over cells either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Budget {
    /// `size = N`: exactly N rows.
    #[serde(rename = "size")]
    Rows(u64),
    /// `tokens = N`: each cell takes rows until its share of N tokens is reached (a row costs
    /// its prompt + completion tokens plus one EOS, under the domain tokenizer).
    #[serde(rename = "tokens")]
    Tokens(u64),
}

impl Budget {
    /// The budget in its unit (rows or tokens).
    pub fn units(self) -> u64 {
        match self {
            Budget::Rows(n) | Budget::Tokens(n) => n,
        }
    }
}

/// One component of a split's mixture; weights are normalised.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Component {
    pub share: f64,
    pub ops: BTreeMap<u32, f64>,
    pub templates: BTreeMap<String, f64>,
    pub modes: BTreeMap<Mode, f64>,
    /// How many distractors each problem states (`distractors = "reference"` by default;
    /// left out of the resolved recipe then, so older recipes keep their hash).
    #[serde(default, skip_serializing_if = "is_reference", with = "noise_text")]
    pub distractors: Noise,
}

fn is_reference(n: &Noise) -> bool {
    *n == Noise::Reference
}

/// A [`Noise`] as the text a recipe gives it ("reference", "none", "N", "A-B").
mod noise_text {
    use super::Noise;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(n: &Noise, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&n.to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Noise, D::Error> {
        let s = String::deserialize(d)?;
        Noise::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl Serialize for Mode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Mode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Mode, D::Error> {
        let s = String::deserialize(d)?;
        Mode::parse(&s).ok_or_else(|| serde::de::Error::custom(format!("unknown mode `{s}`")))
    }
}

/// Why a recipe is unusable; every variant names the file and the key.
#[derive(Debug, thiserror::Error)]
pub enum RecipeError {
    #[error("{path}: cannot read recipe: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: invalid recipe TOML: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{path}: key `{key}`: {problem}")]
    Invalid {
        path: PathBuf,
        key: String,
        problem: String,
    },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRecipe {
    name: Option<String>,
    #[serde(default)]
    description: String,
    seed: u64,
    shard_size: Option<u64>,
    row_group_size: Option<usize>,
    // Kept raw so a bad value is reported with the key's name, not as a type error.
    trace_format: Option<toml::Value>,
    splits: Vec<RawSplit>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSplit {
    name: String,
    // Kept as raw values so a bad budget is reported with the split's name, not as a type error.
    size: Option<toml::Value>,
    tokens: Option<toml::Value>,
    #[serde(default)]
    held_out: bool,
    share: Option<f64>,
    ops: Option<OpsValue>,
    op_weights: Option<BTreeMap<String, f64>>,
    templates: Option<BTreeMap<String, f64>>,
    modes: Option<BTreeMap<String, f64>>,
    distractors: Option<toml::Value>,
    #[serde(default)]
    mix: Vec<RawComponent>,
}

impl Recipe {
    /// Read and validate a recipe file against the available templates.
    pub fn load(path: &Path, templates: &TemplateSet) -> Result<Recipe, RecipeError> {
        let text = std::fs::read_to_string(path).map_err(|source| RecipeError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Recipe::from_toml(path, &text, templates)
    }

    /// Parse and validate recipe text; `path` is used in messages and as the default name.
    pub fn from_toml(
        path: &Path,
        text: &str,
        templates: &TemplateSet,
    ) -> Result<Recipe, RecipeError> {
        let raw: RawRecipe = toml::from_str(text).map_err(|e| RecipeError::Parse {
            path: path.to_path_buf(),
            message: e.to_string().trim_end().to_string(),
        })?;
        Recipe::from_raw(path, raw, templates)
    }

    /// Validate a recipe built as a TOML value rather than text (the quick flags of
    /// `generate`: values are never pasted into TOML source, so no flag can inject keys).
    /// `path` names the source in messages.
    pub fn from_value(
        path: &Path,
        value: toml::Table,
        templates: &TemplateSet,
    ) -> Result<Recipe, RecipeError> {
        let raw: RawRecipe = value
            .try_into()
            .map_err(|e: toml::de::Error| RecipeError::Parse {
                path: path.to_path_buf(),
                message: e.to_string().trim_end().to_string(),
            })?;
        Recipe::from_raw(path, raw, templates)
    }

    fn from_raw(
        path: &Path,
        raw: RawRecipe,
        templates: &TemplateSet,
    ) -> Result<Recipe, RecipeError> {
        let invalid = |key: String, problem: String| RecipeError::Invalid {
            path: path.to_path_buf(),
            key,
            problem,
        };
        let shard_size = raw.shard_size.unwrap_or(DEFAULT_SHARD_SIZE);
        if shard_size == 0 {
            return Err(invalid("shard_size".into(), "must be at least 1".into()));
        }
        let row_group_size = raw.row_group_size.unwrap_or(DEFAULT_ROW_GROUP_SIZE);
        if row_group_size == 0 {
            return Err(invalid(
                "row_group_size".into(),
                "must be at least 1".into(),
            ));
        }
        let trace_format = match &raw.trace_format {
            None => TraceFormat::Full,
            Some(toml::Value::String(s)) => {
                s.parse().map_err(|e: crate::trace::UnknownTraceFormat| {
                    invalid("trace_format".into(), e.to_string())
                })?
            }
            Some(other) => {
                return Err(invalid(
                    "trace_format".into(),
                    format!(
                        "{other} is a {}, not a format name (full, terse, answer_only or long)",
                        other.type_str()
                    ),
                ))
            }
        };
        if raw.splits.is_empty() {
            return Err(invalid(
                "splits".into(),
                "a recipe needs at least one split".into(),
            ));
        }
        let mut splits = Vec::new();
        for (si, mut s) in raw.splits.into_iter().enumerate() {
            let top = RawComponent {
                share: s.share,
                ops: s.ops.take(),
                op_weights: s.op_weights.take(),
                templates: s.templates.take(),
                modes: s.modes.take(),
                distractors: s.distractors.take(),
            };
            let key = |k: &str| format!("splits[{si}]{k}");
            let in_split = |p: String| format!("split `{}`: {p}", s.name);
            let name_ok = !s.name.is_empty()
                && s.name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
            if !name_ok {
                return Err(invalid(
                    key(".name"),
                    format!(
                        "`{}` must be lowercase ASCII letters, digits or '_' (a Hugging Face split name)",
                        s.name
                    ),
                ));
            }
            if splits.iter().any(|x: &SplitSpec| x.name == s.name) {
                return Err(invalid(
                    key(".name"),
                    format!("duplicate split name `{}`", s.name),
                ));
            }
            let budget = match (&s.size, &s.tokens) {
                (Some(v), None) => Budget::Rows(
                    budget_value(v, "rows")
                        .map_err(|p| invalid(key(".size"), in_split(p.to_string())))?,
                ),
                (None, Some(v)) => Budget::Tokens(
                    budget_value(v, "tokens")
                        .map_err(|p| invalid(key(".tokens"), in_split(p.to_string())))?,
                ),
                (Some(_), Some(_)) => {
                    return Err(invalid(
                        key(""),
                        in_split("give `size` (rows) or `tokens`, not both".into()),
                    ))
                }
                (None, None) => {
                    return Err(invalid(
                        key(""),
                        in_split("missing budget: give `size = ROWS` or `tokens = N`".into()),
                    ))
                }
            };
            let has_top = top.ops.is_some() || top.op_weights.is_some() || top.share.is_some();
            let mix = if s.mix.is_empty() {
                if top.share.is_some() {
                    return Err(invalid(
                        key(".share"),
                        "`share` belongs inside [[splits.mix]]".into(),
                    ));
                }
                vec![resolve_component(&top, None, &key(""), templates)
                    .map_err(|e| invalid(e.key, e.problem))?]
            } else {
                if has_top {
                    return Err(invalid(
                        key(""),
                        "give either top-level ops/op_weights or [[splits.mix]] components, not both".into(),
                    ));
                }
                let mut out = Vec::new();
                for (ci, c) in s.mix.iter().enumerate() {
                    out.push(
                        resolve_component(c, Some(&top), &key(&format!(".mix[{ci}]")), templates)
                            .map_err(|e| invalid(e.key, e.problem))?,
                    );
                }
                let total: f64 = out.iter().map(|c| c.share).sum();
                if !total.is_finite() {
                    return Err(invalid(
                        key(".mix"),
                        format!(
                            "shares sum to {total}: scale them down (only their ratios matter)"
                        ),
                    ));
                }
                for c in &mut out {
                    c.share /= total;
                }
                out
            };
            splits.push(SplitSpec {
                name: s.name,
                budget,
                held_out: s.held_out,
                mix,
            });
        }
        let name = raw.name.unwrap_or_else(|| {
            path.file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "dataset".into())
        });
        Ok(Recipe {
            name,
            description: raw.description,
            seed: raw.seed,
            shard_size,
            row_group_size,
            trace_format,
            splits,
        })
    }

    /// Rows of the splits with a row budget (token-budget splits are sized while generating).
    pub fn sized_rows(&self) -> u64 {
        self.splits
            .iter()
            .map(|s| match s.budget {
                Budget::Rows(n) => n,
                Budget::Tokens(_) => 0,
            })
            .fold(0u64, u64::saturating_add)
    }

    /// SHA-256 (hex) of the resolved recipe's JSON form: what every artifact records.
    pub fn hash(&self) -> String {
        let json = serde_json::to_vec(self).expect("a recipe serialises");
        let d = Sha256::digest(&json);
        d.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// Why a `size` or `tokens` value is not a budget.
#[derive(Debug, thiserror::Error)]
enum BudgetError {
    #[error("{value} {unit}: must be at least 1")]
    TooSmall { value: i64, unit: &'static str },
    #[error("{value:?} is not a whole number of {unit} (write e.g. 2_000_000, not 2e6 or 2.5)")]
    Fraction { value: f64, unit: &'static str },
    #[error("{value} is not a whole number of {unit} (it is a {kind})")]
    NotANumber {
        value: toml::Value,
        kind: &'static str,
        unit: &'static str,
    },
}

/// A budget value: a whole number >= 1 (`unit` names the unit in messages).
fn budget_value(v: &toml::Value, unit: &'static str) -> Result<u64, BudgetError> {
    match v {
        toml::Value::Integer(n) if *n >= 1 => Ok(*n as u64),
        toml::Value::Integer(n) => Err(BudgetError::TooSmall { value: *n, unit }),
        toml::Value::Float(f) => Err(BudgetError::Fraction { value: *f, unit }),
        other => Err(BudgetError::NotANumber {
            value: other.clone(),
            kind: other.type_str(),
            unit,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Recipe, String> {
        Recipe::from_toml(Path::new("r.toml"), text, &TemplateSet::builtin())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn tiers_spread_evenly() {
        let r = parse(
            r#"seed = 1
[[splits]]
name = "train"
size = 10
op_weights = { "2-4" = 0.2, "5-7" = 0.3, "8-10" = 0.5 }
"#,
        )
        .unwrap();
        let ops = &r.splits[0].mix[0].ops;
        assert!((ops[&2] - 0.2 / 3.0).abs() < 1e-12);
        assert!((ops[&10] - 0.5 / 3.0).abs() < 1e-12);
        assert_eq!(r.name, "r");
    }

    #[test]
    fn errors_name_key_and_value() {
        let base = "seed = 1\n[[splits]]\nname = \"train\"\nsize = 10\nops = \"2-10\"\n";
        let e = parse(&base.replace("2-10", "0-3")).unwrap_err();
        assert!(e.contains("splits[0].ops") && e.contains("0-3"), "{e}");
        let e = parse(&format!("{base}templates = {{ zoo = 1, moon = 1 }}\n")).unwrap_err();
        assert!(e.contains("unknown template `moon`"), "{e}");
        let e = parse(&base.replace("name = \"train\"", "name = \"Train Set\"")).unwrap_err();
        assert!(e.contains("splits[0].name"), "{e}");
        let e = parse(&format!("{base}modes = {{ sideways = 1 }}\n")).unwrap_err();
        assert!(e.contains("sideways"), "{e}");
        let e = parse(&base.replace("seed = 1", "seed = \"x\"")).unwrap_err();
        assert!(e.contains("r.toml") && e.contains("line 1"), "{e}");
        let e = parse(&format!("{base}colour = 3\n")).unwrap_err();
        assert!(e.contains("colour"), "{e}");
    }

    #[test]
    fn trace_format_is_a_named_key_and_full_keeps_the_hash() {
        let base = "seed = 1\n[[splits]]\nname = \"train\"\nsize = 10\nops = \"2-10\"\n";
        let r = parse(base).unwrap();
        assert_eq!(r.trace_format, TraceFormat::Full);
        let full = parse(&format!("trace_format = \"full\"\n{base}")).unwrap();
        assert_eq!(
            full.hash(),
            r.hash(),
            "the default format leaves the hash alone"
        );
        assert!(!serde_json::to_string(&full)
            .unwrap()
            .contains("trace_format"));
        for f in TraceFormat::ALL {
            let t = parse(&format!("trace_format = \"{f}\"\n{base}")).unwrap();
            assert_eq!(t.trace_format, f);
            if f != TraceFormat::Full {
                assert_ne!(t.hash(), r.hash(), "{f}");
                let json = serde_json::to_string(&t).unwrap();
                assert!(json.contains(&format!(r#""trace_format":"{f}""#)), "{json}");
                assert_eq!(serde_json::from_str::<Recipe>(&json).unwrap(), t);
            }
        }
        for (bad, needle) in [("\"verbose\"", "`verbose`"), ("3", "integer")] {
            let e = parse(&format!("trace_format = {bad}\n{base}")).unwrap_err();
            assert!(
                e.contains("key `trace_format`") && e.contains(needle),
                "{e}"
            );
        }
    }

    #[test]
    fn budgets_are_rows_or_tokens_and_size_splits_keep_their_hash() {
        let base = "seed = 1\n[[splits]]\nname = \"train\"\nsize = 10\nops = \"2-10\"\n";
        let r = parse(base).unwrap();
        assert_eq!(r.splits[0].budget, Budget::Rows(10));
        // The JSON form of a size split is unchanged (`"size": 10`), so recipes keep their hash.
        let json = serde_json::to_string(&r.splits[0]).unwrap();
        assert!(
            json.starts_with(r#"{"name":"train","size":10,"held_out":false,"mix":"#),
            "{json}"
        );
        let back: SplitSpec = serde_json::from_str(&json).unwrap();
        assert_eq!(back, r.splits[0]);
        let t = parse(&base.replace("size = 10", "tokens = 2_000_000")).unwrap();
        assert_eq!(t.splits[0].budget, Budget::Tokens(2_000_000));
        assert_ne!(t.hash(), r.hash());
        let json = serde_json::to_string(&t.splits[0]).unwrap();
        assert!(json.contains(r#""tokens":2000000"#), "{json}");

        for (budget, needles) in [
            (
                "tokens = 0",
                &["splits[0].tokens", "split `train`", "at least 1"][..],
            ),
            ("tokens = -5", &["splits[0].tokens", "split `train`", "-5"]),
            (
                "tokens = 2e6",
                &["splits[0].tokens", "2000000.0", "whole number"],
            ),
            ("tokens = 1.5", &["splits[0].tokens", "1.5", "whole number"]),
            (
                "tokens = \"lots\"",
                &["splits[0].tokens", "\"lots\"", "string"],
            ),
            (
                "size = 0",
                &["splits[0].size", "split `train`", "at least 1"],
            ),
            ("size = 2.5", &["splits[0].size", "whole number"]),
            (
                "size = 4\ntokens = 9",
                &["splits[0]", "split `train`", "not both"],
            ),
            (
                "held_out = false",
                &["splits[0]", "split `train`", "missing budget"],
            ),
        ] {
            let e = parse(&base.replace("size = 10", budget)).unwrap_err();
            assert!(e.starts_with("r.toml: "), "{e}");
            for n in needles {
                assert!(e.contains(n), "`{n}` not in: {e}");
            }
        }
    }
}
