//! Sizing a split with a token budget (`tokens = N`). Shard layout needs every cell's row
//! count before the first row is written, so each cell in turn walks its candidates in index
//! order exactly as selection does (bucket rule, then the Bloom filter), renders and tokenizes
//! the accepted ones, and stops at the first row that brings its tokens to its budget. Sizing
//! is the split's real dedup pass: it inserts exactly the ids the split will use and remembers
//! the candidates the filter rejected, which selection then replays instead of consulting the
//! filter again (whose false positives depend on insertion order).

use rayon::prelude::*;

use super::plan::{candidate_seed, cell_seed_base, row_tokens};
use super::select::{candidate_window, MAX_CONSECUTIVE_REJECTS};
use super::{GenerateError, Observer};
use crate::composer::{compose_noisy, problem_id, ProblemId};
use crate::dataset::bloom::Bloom;
use crate::dataset::manifest::CellManifest;
use crate::dataset::recipe::{Budget, Recipe, SplitSpec};
use crate::dataset::split::{admits, Cell, Share};
use crate::render::Rendered;
use crate::template::TemplateSet;
use crate::tokenizer::Tokenizer;

/// Rows per sizing window while a cell's tokens per row are still unknown.
const PROBE_ROWS: u64 = 32;
/// Most candidates in one sizing window (bounds its memory).
const MAX_SIZING_WINDOW: u64 = 1 << 16;
/// Tokens per row assumed when sizing the Bloom filter for token budgets. Real rows are longer
/// (op 1 rows have 46 or more, op 2-10 rows about 350 on average), so the filter errs on the
/// large side; its size only moves which rare false positives get skipped, deterministically.
const BLOOM_TOKENS_PER_ROW: u64 = 32;

/// A token-budget cell after sizing.
pub(super) struct SizedCell {
    pub(super) cell: Cell,
    pub(super) token_budget: u64,
    pub(super) tokens: u64,
    /// The candidates the Bloom filter rejected, for selection to replay.
    pub(super) duplicates: Vec<u64>,
}

/// Rows the dataset-wide Bloom filter is sized for (token budgets at a low tokens per row).
pub(super) fn bloom_items(recipe: &Recipe) -> u64 {
    recipe
        .splits
        .iter()
        .map(|s| match s.budget {
            Budget::Rows(n) => n,
            Budget::Tokens(n) => n.div_ceil(BLOOM_TOKENS_PER_ROW),
        })
        .fold(0u64, u64::saturating_add)
}

/// The manifest's cells of a sized split, checking that writing counted the very tokens
/// sizing did (`written[i]`: the tokens written for cell `i`).
pub(super) fn cell_manifests(
    split: &str,
    sized: &[SizedCell],
    written: &[u64],
) -> Vec<CellManifest> {
    let mut out = Vec::with_capacity(sized.len());
    for (c, &tokens) in sized.iter().zip(written) {
        // Sizing counted the very rows that were written.
        assert_eq!(
            c.tokens, tokens,
            "split `{}`: sizing and writing disagree on cell {} op {} {}",
            split, c.cell.template, c.cell.op, c.cell.mode
        );
        out.push(CellManifest {
            template: c.cell.template.clone(),
            op: c.cell.op,
            mode: c.cell.mode.as_str().to_string(),
            distractors: c.cell.noise.to_string(),
            token_budget: c.token_budget,
            rows: c.cell.rows,
            tokens: c.tokens,
        });
    }
    out
}

/// Size a token-budget split: for each cell in turn, walk its candidates in index order through
/// the bucket rule and the Bloom filter (inserting the accepted ids), and take accepted rows
/// until the cell's tokens reach its budget; the row that reaches it is kept, so a cell
/// overshoots its budget by less than one row. Candidates are composed, rendered and tokenized
/// in parallel windows whose size depends only on the counts so far, never on threads.
pub(super) fn size_cells(
    recipe: &Recipe,
    split: &SplitSpec,
    shares: &[Share],
    templates: &TemplateSet,
    tok: &Tokenizer,
    bloom: &mut Bloom,
    obs: &dyn Observer,
) -> Result<Vec<SizedCell>, GenerateError> {
    let mut out = Vec::with_capacity(shares.len());
    for share in shares {
        let t = templates.get(&share.template).expect("validated");
        let base = cell_seed_base(
            recipe.seed,
            &split.name,
            &t.id,
            share.op,
            share.mode,
            share.noise,
        );
        let compose_err = |source| GenerateError::Compose {
            split: split.name.clone(),
            template: share.template.clone(),
            op: share.op,
            mode: share.mode,
            source,
        };
        let budget = share.units;
        let (mut next, mut rows, mut tokens) = (0u64, 0u64, 0u64);
        let (mut rejects_in_a_row, mut duplicates) = (0u64, Vec::new());
        while tokens < budget {
            // Enough candidates for the rows still missing at the mean row length so far,
            // scaled by the expected acceptance rate as in `fill_queues`.
            let want = match rows {
                0 => PROBE_ROWS,
                _ => (budget - tokens).div_ceil(tokens / rows),
            };
            let window = candidate_window(split.held_out, want).min(MAX_SIZING_WINDOW);
            // Per candidate: its id and, if the bucket rule admits it, its token count.
            let results: Vec<Result<(ProblemId, Option<u64>), GenerateError>> = (next..next
                + window)
                .into_par_iter()
                .map_init(
                    || (Vec::new(), Rendered::in_format(recipe.trace_format)),
                    |(buf, r), i| {
                        let p = compose_noisy(
                            t,
                            share.op,
                            share.mode,
                            share.noise,
                            candidate_seed(&base, i),
                        )
                        .map_err(compose_err)?;
                        let id = problem_id(&t.id, &p, buf);
                        if !admits(split.held_out, &id) {
                            return Ok((id, None));
                        }
                        r.fill(t, &p);
                        Ok((id, Some(row_tokens(tok, r)?)))
                    },
                )
                .collect();
            let before = tokens;
            for (i, res) in (next..).zip(results) {
                next = i + 1;
                let (id, n) = res?;
                match n {
                    None => rejects_in_a_row += 1,
                    Some(_) if !bloom.insert(&id) => {
                        duplicates.push(i);
                        rejects_in_a_row += 1;
                    }
                    Some(n) => {
                        rows += 1;
                        tokens += n;
                        rejects_in_a_row = 0;
                        if tokens >= budget {
                            break;
                        }
                    }
                }
                if rejects_in_a_row >= MAX_CONSECUTIVE_REJECTS {
                    return Err(GenerateError::Exhausted {
                        split: split.name.clone(),
                        template: share.template.clone(),
                        op: share.op,
                        mode: share.mode,
                        accepted: rows,
                        rejected: rejects_in_a_row,
                    });
                }
            }
            obs.tokens_sized(tokens - before);
        }
        out.push(SizedCell {
            cell: share.cell(rows),
            token_budget: budget,
            tokens,
            duplicates,
        });
    }
    Ok(out)
}
