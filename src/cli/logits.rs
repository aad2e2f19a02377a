//! `dagmath logits`: a checkpoint's logits for a text, as JSON, so its parity with another
//! implementation (transformers: `examples/hf_check.py`) can be checked without writing Rust.

use std::io::Write;
use std::path::PathBuf;

use anyhow::anyhow;
use burn::tensor::{Int, Tensor, TensorData};

use dagmath::model::{weights, Qwen2};
use dagmath::train::device::{cpu_device, CpuInference};

use super::CliError;

/// Print a checkpoint's logits for a text as one JSON object:
/// `{"input_ids": [[id, ...]], "logits": [[[f32 x vocab] x seq]]}` (what examples/hf_check.py
/// reads), computed in f32 on the CPU.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Example:\n  dagmath logits --model out/hf-tiny --text '<question> Define K as 2.' > logits.json\n  \
python examples/hf_check.py out/hf-tiny logits.json"
)]
pub struct Args {
    /// A checkpoint or Hugging Face folder, or a run folder (its latest checkpoint).
    #[arg(long, value_name = "DIR")]
    model: PathBuf,
    /// The text, encoded with the checkpoint's tokenizer.json (no special tokens added).
    #[arg(long)]
    text: String,
}

pub fn run(a: Args) -> Result<(), CliError> {
    let (loaded, tok) = super::eval::load_checkpoint(&a.model)?;
    let ids = tok.encode(&a.text).map_err(CliError::usage)?;
    if ids.is_empty() {
        return Err(CliError::usage(anyhow!("--text: encodes to no tokens")));
    }
    if ids.len() > loaded.model.max_position_embeddings {
        return Err(CliError::usage(anyhow!(
            "--text: {} tokens, more than the model's max_position_embeddings {}",
            ids.len(),
            loaded.model.max_position_embeddings
        )));
    }
    let device = cpu_device();
    let model: Qwen2<CpuInference> =
        weights::to_model(&loaded.model, &loaded.weights, &device).map_err(CliError::usage)?;
    let t = ids.len();
    let input: Vec<i64> = ids.iter().map(|&x| x as i64).collect();
    let x = Tensor::<CpuInference, 2, Int>::from_data(TensorData::new(input, [1, t]), &device);
    let logits = model.forward(x);
    let [_, _, v] = logits.dims();
    let flat = logits
        .into_data()
        .to_vec::<f32>()
        .map_err(|e| anyhow!("logits: {e:?}"))?;
    let rows: Vec<&[f32]> = flat.chunks(v).collect();
    let json = serde_json::json!({"input_ids": [ids], "logits": [rows]});
    let mut out = std::io::stdout().lock();
    writeln!(out, "{json}").map_err(|e| anyhow!("stdout: {e}"))?;
    Ok(())
}
