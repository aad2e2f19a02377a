//! `dagmath export` and `dagmath import`: Hugging Face Qwen2 folders in and out.

use std::path::{Path, PathBuf};

use dagmath::model::{hf, weights};
use dagmath::tokenizer::Tokenizer;
use dagmath::train::checkpoint;

use super::CliError;

/// Write a checkpoint as a Hugging Face Qwen2 folder (config.json, model.safetensors,
/// tokenizer.json) that transformers' AutoModelForCausalLM loads.
#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// A checkpoint folder (out/checkpoints/step-N) or a run folder (its latest checkpoint).
    #[arg(long, value_name = "CKPT")]
    checkpoint: PathBuf,
    /// Output folder (must not exist, or be empty, unless --force).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Replace an existing output folder.
    #[arg(long)]
    force: bool,
}

/// Read a Hugging Face Qwen2 folder (single or sharded safetensors, f32/f16/bf16) and write it
/// as a dagmath checkpoint folder that `dagmath train midtrain --from` can start from.
#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// The Hugging Face folder (config.json, *.safetensors, tokenizer.json).
    #[arg(long, value_name = "DIR")]
    hf: PathBuf,
    /// Output checkpoint folder.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Replace an existing output folder.
    #[arg(long)]
    force: bool,
}

/// A checkpoint folder, or a run folder's latest checkpoint.
pub fn resolve_checkpoint(path: &Path) -> Result<PathBuf, CliError> {
    if path.join("config.json").exists() {
        return Ok(path.to_path_buf());
    }
    let list = checkpoint::list(path).map_err(CliError::usage)?;
    match list.last() {
        Some((_, dir)) => Ok(dir.clone()),
        None => Err(CliError::usage(anyhow::anyhow!(
            "{}: not a checkpoint folder (no config.json) and no checkpoints under it",
            path.display()
        ))),
    }
}

/// Checks an output folder: absent or empty is fine; a regular file, or a non-empty folder
/// without --force, is refused (exit 2). With --force a folder is replaced only if it holds
/// every file of `ours` (what this command writes): dagmath never deletes a folder of files
/// it did not write.
pub fn prepare_out(out: &Path, force: bool, ours: &[&str]) -> Result<(), CliError> {
    if out.exists() && !out.is_dir() {
        return Err(CliError::usage(anyhow::anyhow!(
            "--out {}: is a file, not a folder",
            out.display()
        )));
    }
    if out.exists() {
        let empty = out
            .read_dir()
            .map(|mut d| d.next().is_none())
            .map_err(|e| anyhow::anyhow!("{}: {e}", out.display()))?;
        if !empty {
            if !force {
                return Err(CliError::usage(anyhow::anyhow!(
                    "--out {}: folder exists and is not empty (use --force to replace it)",
                    out.display()
                )));
            }
            if let Some(missing) = ours.iter().find(|f| !out.join(f).exists()) {
                return Err(CliError::usage(anyhow::anyhow!(
                    "--out {}: holds files dagmath did not write (no {missing}); refusing to replace it, even with --force",
                    out.display()
                )));
            }
            std::fs::remove_dir_all(out)
                .map_err(|e| anyhow::anyhow!("{}: cannot remove: {e}", out.display()))?;
        }
    }
    Ok(())
}

/// The files of a Hugging Face folder dagmath writes.
pub const HF_FILES: &[&str] = &["config.json", "model.safetensors", "tokenizer.json"];

fn special_ids(tok: &Tokenizer) -> (u32, u32) {
    let eos = tok
        .token_id("[EOS]")
        .or_else(|| tok.token_id("<|endoftext|>"))
        .unwrap_or(0);
    (tok.token_id("[PAD]").unwrap_or(eos), eos)
}

pub fn export(a: ExportArgs) -> Result<(), CliError> {
    let dir = resolve_checkpoint(&a.checkpoint)?;
    let ck = checkpoint::load(&dir).map_err(super::checkpoint_error)?;
    let tok = Tokenizer::from_file(&ck.tokenizer).map_err(CliError::usage)?;
    prepare_out(&a.out, a.force, HF_FILES)?;
    let (pad, eos) = special_ids(&tok);
    hf::export(&a.out, &ck.model, &ck.weights, tok.json(), pad, eos)?;
    println!(
        "exported {} ({} parameters) to {}",
        dir.display(),
        ck.model.n_params(),
        a.out.display()
    );
    Ok(())
}

pub fn import(a: ImportArgs) -> Result<(), CliError> {
    let m = hf::import(&a.hf).map_err(super::hf_error)?;
    let tok = Tokenizer::from_file(&m.tokenizer).map_err(CliError::usage)?;
    // A vocabulary padded past the tokenizer (common for GPU-friendly sizes) would import
    // and then be refused by eval and export; refuse it here, where it can be fixed.
    if m.config.vocab_size != tok.vocab_size() {
        return Err(CliError::usage(anyhow::anyhow!(
            "{}: config.json's vocab_size {} differs from the tokenizer's {} tokens; dagmath needs them equal (a padded vocabulary is not supported: trim the embedding to the tokenizer)",
            a.hf.display(),
            m.config.vocab_size,
            tok.vocab_size()
        )));
    }
    // Build the model once: every tensor must be present with the right shape.
    let device = dagmath::train::device::cpu_device();
    let model =
        weights::to_model::<dagmath::train::device::CpuInference>(&m.config, &m.weights, &device)
            .map_err(CliError::usage)?;
    let w = weights::from_model(&model);
    prepare_out(&a.out, a.force, HF_FILES)?;
    let (pad, eos) = special_ids(&tok);
    hf::export(&a.out, &m.config, &w, tok.json(), pad, eos)?;
    println!(
        "imported {} ({} layers, hidden {}, {} parameters) to {}",
        a.hf.display(),
        m.config.num_hidden_layers,
        m.config.hidden_size,
        m.config.n_params(),
        a.out.display()
    );
    Ok(())
}
