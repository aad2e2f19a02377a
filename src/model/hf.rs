//! Hugging Face Qwen2 folders: `config.json` + `model.safetensors` (or sharded with
//! `model.safetensors.index.json`) + `tokenizer.json`, as `transformers`' `AutoModelForCausalLM`
//! and `AutoTokenizer` load them.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_json::json;

use super::weights::{load_safetensors, save_safetensors, Weights, WeightsError};
use super::ModelConfig;

#[derive(Debug, thiserror::Error)]
pub enum HfError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {msg}")]
    Bad { path: String, msg: String },
    /// `config.json` asks for dimensions or settings dagmath's model refuses.
    #[error("{path}: {source}")]
    Config {
        path: String,
        source: super::config::ModelConfigError,
    },
    #[error(transparent)]
    Weights(#[from] WeightsError),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> HfError + '_ {
    move |source| HfError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Writes a Hugging Face folder at `dir` (which must not exist yet, or be empty). Files go to a
/// sibling temporary folder first, renamed into place at the end, so a killed export leaves no
/// half-written folder behind.
pub fn export(
    dir: &Path,
    config: &ModelConfig,
    weights: &Weights,
    tokenizer_json: &str,
    pad_id: u32,
    eos_id: u32,
) -> Result<(), HfError> {
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "export".into());
    let parent = dir.parent().filter(|p| !p.as_os_str().is_empty());
    let parent = parent.unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(io(parent))?;
    let tmp = parent.join(format!(".{name}.tmp"));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(io(&tmp))?;
    }
    std::fs::create_dir_all(&tmp).map_err(io(&tmp))?;
    let write = |file: &str, text: String| -> Result<(), HfError> {
        // fsynced, so the folder renamed into place below never holds an empty file.
        crate::fs::write_atomic(&tmp.join(file), text.as_bytes()).map_err(|(path, source)| {
            HfError::Io {
                path: path.display().to_string(),
                source,
            }
        })
    };
    write("config.json", pretty(&config.hf_config(pad_id, eos_id)))?;
    write(
        "generation_config.json",
        pretty(&generation_config(tokenizer_json, pad_id, eos_id)),
    )?;
    write("tokenizer.json", tokenizer_json.to_string())?;
    let token = |id: u32| token_text(tokenizer_json, id);
    // transformers 5 ignores `tokenizer_class` for model_type qwen2 and substitutes its
    // byte-level Qwen2Tokenizer, which mis-encodes a word-level tokenizer.json. An
    // `auto_map` entry for AutoTokenizer skips that substitution (the entry itself is
    // dropped for qwen2 unless trust_remote_code is set), so `AutoTokenizer.from_pretrained`
    // falls through to `tokenizer_class` and loads tokenizer.json as it is.
    write(
        "tokenizer_config.json",
        pretty(&json!({
            "tokenizer_class": "PreTrainedTokenizerFast",
            "auto_map": {"AutoTokenizer": [null, "PreTrainedTokenizerFast"]},
            "model_max_length": config.max_position_embeddings,
            "pad_token": token(pad_id),
            "eos_token": token(eos_id),
            "clean_up_tokenization_spaces": false,
        })),
    )?;
    let meta = HashMap::from([("format".to_string(), "pt".to_string())]);
    save_safetensors(&tmp.join("model.safetensors"), weights, Some(meta))?;
    if dir.exists() {
        // Only an empty folder may be replaced (the CLI checks and asks for --force).
        std::fs::remove_dir(dir).map_err(io(dir))?;
    }
    std::fs::rename(&tmp, dir).map_err(io(dir))?;
    Ok(())
}

/// `generation_config.json`: stop at `[EOS]` and at `</answer>` (one token in dagmath's
/// tokenizer; left out where a tokenizer has no such token), and sample as `dagmath eval`
/// does by default (temperature 0.7, no top-k or top-p truncation), so transformers'
/// `generate` with its defaults behaves like dagmath's sampler.
pub fn generation_config(tokenizer_json: &str, pad_id: u32, eos_id: u32) -> serde_json::Value {
    let s = crate::engine::Sampling::default();
    let mut stops = vec![eos_id];
    if let Some(id) = token_id(tokenizer_json, "</answer>").filter(|&id| id != eos_id) {
        stops.push(id);
    }
    json!({
        "bos_token_id": eos_id,
        "eos_token_id": stops,
        "pad_token_id": pad_id,
        "do_sample": s.temperature > 0.0,
        "temperature": s.temperature,
        "top_k": s.top_k,
        "top_p": s.top_p,
        "max_new_tokens": crate::engine::GenConfig::default().max_new_tokens,
    })
}

/// The id of token `text` in a tokenizer.json's added tokens or vocabulary.
fn token_id(tokenizer_json: &str, text: &str) -> Option<u32> {
    let v: serde_json::Value = serde_json::from_str(tokenizer_json).ok()?;
    if let Some(added) = v.get("added_tokens").and_then(|a| a.as_array()) {
        for t in added {
            if t.get("content").and_then(|c| c.as_str()) == Some(text) {
                return t.get("id").and_then(|x| x.as_u64()).map(|x| x as u32);
            }
        }
    }
    v.get("model")?
        .get("vocab")?
        .get(text)?
        .as_u64()
        .map(|x| x as u32)
}

fn pretty(v: &serde_json::Value) -> String {
    let mut s = serde_json::to_string_pretty(v).expect("JSON value serialises");
    s.push('\n');
    s
}

/// The text of token `id` in a tokenizer.json's vocabulary or added tokens.
fn token_text(tokenizer_json: &str, id: u32) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(tokenizer_json).ok()?;
    if let Some(added) = v.get("added_tokens").and_then(|a| a.as_array()) {
        for t in added {
            if t.get("id").and_then(|x| x.as_u64()) == Some(id as u64) {
                return t.get("content").and_then(|c| c.as_str()).map(String::from);
            }
        }
    }
    let vocab = v.get("model")?.get("vocab")?.as_object()?;
    vocab
        .iter()
        .find(|(_, x)| x.as_u64() == Some(id as u64))
        .map(|(k, _)| k.clone())
}

/// A Hugging Face folder read back: dimensions, weights and the tokenizer file's path.
#[derive(Debug)]
pub struct HfModel {
    pub config: ModelConfig,
    pub weights: Weights,
    pub tokenizer: PathBuf,
}

/// Reads a Hugging Face Qwen2 folder (single or sharded safetensors).
pub fn import(dir: &Path) -> Result<HfModel, HfError> {
    let cfg_path = dir.join("config.json");
    let text = std::fs::read_to_string(&cfg_path).map_err(io(&cfg_path))?;
    let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| HfError::Bad {
        path: cfg_path.display().to_string(),
        msg: format!("invalid JSON: {e}"),
    })?;
    let config = ModelConfig::from_hf_config(&v).map_err(|source| HfError::Config {
        path: cfg_path.display().to_string(),
        source,
    })?;
    let single = dir.join("model.safetensors");
    let index = dir.join("model.safetensors.index.json");
    let weights = if single.exists() {
        load_safetensors(&single)?
    } else if index.exists() {
        let text = std::fs::read_to_string(&index).map_err(io(&index))?;
        let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| HfError::Bad {
            path: index.display().to_string(),
            msg: format!("invalid JSON: {e}"),
        })?;
        let map = v
            .get("weight_map")
            .and_then(|m| m.as_object())
            .ok_or_else(|| HfError::Bad {
                path: index.display().to_string(),
                msg: "no \"weight_map\" object".into(),
            })?;
        let mut files: Vec<&str> = map.values().filter_map(|f| f.as_str()).collect();
        files.sort_unstable();
        files.dedup();
        let mut all = Weights::new();
        let mut from: HashMap<String, &str> = HashMap::new();
        for f in files {
            for (name, t) in load_safetensors(&dir.join(f))? {
                // Two shards with the same tensor: which one is meant is unknowable.
                if let Some(first) = from.insert(name.clone(), f) {
                    return Err(HfError::Bad {
                        path: dir.display().to_string(),
                        msg: format!("tensor {name} is in two shards, {first} and {f}"),
                    });
                }
                all.insert(name, t);
            }
        }
        all
    } else {
        return Err(HfError::Bad {
            path: dir.display().to_string(),
            msg: "no model.safetensors or model.safetensors.index.json".into(),
        });
    };
    let tokenizer = dir.join("tokenizer.json");
    if !tokenizer.exists() {
        return Err(HfError::Bad {
            path: dir.display().to_string(),
            msg: "no tokenizer.json".into(),
        });
    }
    Ok(HfModel {
        config,
        weights,
        tokenizer,
    })
}
