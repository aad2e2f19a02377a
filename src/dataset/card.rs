//! `README.md` of a generated dataset: a Hugging Face dataset card whose YAML header maps
//! every split to its shards, so `datasets.load_dataset(DIR)` finds them.

use std::fmt::Write;

use super::manifest::Manifest;
use crate::trace::TraceFormat;

/// What the `solution` and `completion` columns hold in a format other than `full`.
fn format_note(f: TraceFormat) -> Option<&'static str> {
    match f {
        TraceFormat::Full => None,
        TraceFormat::Terse => Some(
            "each step is `NAME: ...; L = ...`, the arithmetic without the `Define … as L;` prose",
        ),
        TraceFormat::Long => Some(
            "the full trace with each step followed by a check, `We know L is NAME, and E = v, so L = v.`",
        ),
        TraceFormat::AnswerOnly => Some(
            "no trace: the completion is ` </solution> <answer> N </answer>`, so only the outcome can be verified",
        ),
    }
}

/// Render the card for a finished dataset.
pub fn dataset_card(m: &Manifest) -> String {
    let mut s = String::new();
    s.push_str("---\nconfigs:\n- config_name: default\n  data_files:\n");
    for sp in &m.splits {
        let _ = writeln!(s, "  - split: {}\n    path: data/{}-*", sp.name, sp.name);
    }
    s.push_str("task_categories:\n- text-generation\ntags:\n- dagmath\n- synthetic\n- reasoning\n- arithmetic\n---\n\n");
    let _ = writeln!(s, "# {}\n", m.recipe.name);
    if !m.recipe.description.is_empty() {
        let _ = writeln!(s, "{}\n", m.recipe.description);
    }
    let _ = writeln!(
        s,
        "Synthetic arithmetic reasoning problems composed as dependency DAGs by dagmath {} \
         (schema version {}), from a recipe with SHA-256 `{}` and seed {}. The same recipe and \
         seed reproduce these files byte for byte; `manifest.json` lists every shard's SHA-256.\n",
        m.dagmath_version, m.schema_version, m.recipe_sha256, m.seed
    );
    // A dataset of the default format keeps the card it always had.
    if let Some(what) = format_note(m.trace_format) {
        let _ = writeln!(
            s,
            "Trace format: `{}` ({what}). The prompts are those of every other format; \
             verify completions in this format (`dagmath audit` and `eval` read it from \
             `manifest.json`).\n",
            m.trace_format
        );
    }
    s.push_str(
        "| split | rows | tokens | held out | ops | templates | modes | distractors |\n\
         |---|---|---|---|---|---|---|---|\n",
    );
    for sp in &m.splits {
        let ops: Vec<u32> = sp.op_hist.keys().copied().collect();
        let ops = match (ops.first(), ops.last()) {
            (Some(a), Some(b)) if a != b => format!("{a}-{b}"),
            (Some(a), _) => a.to_string(),
            _ => String::new(),
        };
        let join = |h: &std::collections::BTreeMap<String, u64>| {
            h.iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let tokens = match sp.token_budget {
            Some(b) => format!("{} (budget {b})", sp.tokens),
            None => sp.tokens.to_string(),
        };
        let rows: u64 = sp.distractor_hist.values().sum();
        let stated: u64 = sp.distractor_hist.iter().map(|(&d, &n)| d as u64 * n).sum();
        let distractors = format!(
            "{} (mean {:.2})",
            sp.distractors.join(", "),
            stated as f64 / rows.max(1) as f64
        );
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            sp.name,
            sp.rows,
            tokens,
            if sp.held_out { "yes" } else { "no" },
            ops,
            join(&sp.template_hist),
            join(&sp.mode_hist),
            distractors
        );
    }
    s.push_str(
        "\n## Columns\n\n\
         - `id`: canonical problem hash (invariant to trace letters and sentence order)\n\
         - `split`, `op` (operations in the necessary subgraph), `template`, `mode` (`forward` / `reverse`)\n\
         - `problem`, `question`: the problem text\n\
         - `solution`: the gold step-by-step trace, ending `Answer: N.`\n\
         - `answer`: the integer answer\n\
         - `prompt`: `<question> {problem} {question} </question> <solution>`; `completion`: the rest through `</answer>`\n\
         - `graph`: the gold dependency graph, a list of `{name, value, parents, kind}` in topological order\n\
         - `n_nodes`, `n_distractors`, `depth`\n\n\
         `distractors` is the recipe's noise setting: `reference` states as many distractor \
         sentences as the paper's generator does at that op, `none` only the needed sentences, `N` \
         or `A-B` exactly that many (`manifest.json` has each split's histogram).\n\n\
         Tokens count each row's training sequence, `prompt + completion` and one EOS, under the \
         domain tokenizer (`dagmath tokenizer`). A split with a token budget gives every (template, \
         op, mode) cell its share of the budget; a cell takes rows in order until its tokens reach \
         its share, so it overshoots by less than one row (`manifest.json` lists every cell).\n\n\
         Held-out splits contain only problems whose id falls in the reserved held-out bucket, which no \
         training split of any dagmath dataset uses.\n\n\
         ```python\nfrom datasets import load_dataset\nds = load_dataset(\"path/to/this/folder\")\n```\n",
    );
    s
}
