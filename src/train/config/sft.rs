//! `dagmath train sft`'s section of a [`super::TrainConfig`]: supervised fine-tuning is a
//! pre-/mid-training run whose loss counts the completion only. The prompt (everything
//! through `<solution>`, encoded alone exactly as RL and `eval` encode it) gets weight 0; the
//! completion and its `[EOS]` get weight 1; the loss is the mean over the weighted tokens of
//! the optimiser step. What remains is how documents fill the `[batch, seq_len]` rows.
//!
//! ```toml
//! [sft]
//! packing = "packed"   # packed | padded
//! ```

use serde::{Deserialize, Serialize};

/// The `[sft]` section (every key optional).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SftConfig {
    /// How documents fill the rows (default `packed`).
    pub packing: Packing,
}

/// How SFT documents become training rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Packing {
    /// Documents concatenated into rows of `seq_len + 1` tokens, as pre-training cuts them (a
    /// document may straddle two rows; its mask follows its tokens). The default: every step
    /// runs the same positions as a pre-/mid-training step of the same config, so phases
    /// compare at equal FLOPs and no compute goes to padding.
    #[default]
    Packed,
    /// One document per row, padded to the longest row of the micro-batch (pad positions
    /// get weight 0); a document longer than `seq_len + 1` tokens is skipped, not truncated
    /// (a cut completion would teach the model to stop mid-trace), and counted
    /// (`skipped_docs` in the metrics). Attention never crosses documents.
    Padded,
}

impl Packing {
    pub fn name(self) -> &'static str {
        match self {
            Packing::Packed => "packed",
            Packing::Padded => "padded",
        }
    }
}
