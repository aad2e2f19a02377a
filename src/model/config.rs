//! Model dimensions: the three presets, parameter and FLOP counts, and the Hugging Face
//! `config.json` a Qwen2 checkpoint carries.

use serde::{Deserialize, Serialize};
use serde_json::json;

/// Why a model's dimensions, or a Hugging Face `config.json`, are refused; every variant names
/// the key at fault.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ModelConfigError {
    #[error("{key} must be positive, got 0")]
    Zero { key: &'static str },
    #[error("{key} {value} is not a multiple of {of} {of_value}")]
    NotMultiple {
        key: &'static str,
        value: usize,
        of: &'static str,
        of_value: usize,
    },
    #[error("head dimension {head_dim} must be even for RoPE")]
    OddHeadDim { head_dim: usize },
    #[error("{key} = {value}: must be a positive finite number")]
    NotPositive { key: &'static str, value: f64 },
    /// The model does not fit in memory ([`crate::limits::check_fits`]; names the dimensions).
    #[error("{0}")]
    Memory(crate::limits::TooBig),
    /// A `config.json` refused: the reason, prefixed with the file's name.
    #[error("config.json: {0}")]
    Hf(Box<ModelConfigError>),
    #[error("missing or non-integer \"{key}\"")]
    HfInteger { key: String },
    #[error("model_type \"{found}\" is not \"qwen2\"")]
    HfModelType { found: String },
    /// A setting dagmath's model does not implement (`supported` says what it does).
    #[error("\"{key}\" = {value} is not supported ({supported})")]
    HfUnsupported {
        key: String,
        value: String,
        supported: &'static str,
    },
    #[error("\"{key}\" is not supported (dagmath implements the default RoPE only)")]
    HfUnsupportedKey { key: String },
    #[error("\"{key}\" = {value} is not a number")]
    HfNotNumber { key: String, value: String },
    #[error("\"{key}\" is not an object")]
    HfNotObject { key: String },
    #[error("\"layer_types\" holds {found}; only \"full_attention\" is supported")]
    HfLayerTypes { found: String },
    #[error(
        "\"head_dim\" = {head_dim} is not hidden_size / num_attention_heads = {hidden} / {heads}"
    )]
    HfHeadDim {
        head_dim: u64,
        hidden: u64,
        heads: u64,
    },
    #[error("\"rope_theta\" = {top} and \"{key}.rope_theta\" = {nested} disagree")]
    HfRopeDisagree {
        top: f64,
        key: &'static str,
        nested: f64,
    },
    #[error(
        "no \"rope_theta\" (top-level or in \"rope_parameters\"); dagmath will not assume one"
    )]
    HfNoRopeTheta,
}

type E = ModelConfigError;

/// `config.json`'s error for `e`.
fn hf(e: ModelConfigError) -> ModelConfigError {
    E::Hf(Box::new(e))
}

/// Dimensions of a Qwen2-style decoder. Defaults follow SPEC §6 (RMSNorm eps 1e-6, RoPE θ 1e6,
/// tied embeddings); the vocabulary size comes from the tokenizer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub num_key_value_heads: usize,
    pub intermediate_size: usize,
    #[serde(default = "default_max_positions")]
    pub max_position_embeddings: usize,
    #[serde(default = "default_rope_theta")]
    pub rope_theta: f64,
    #[serde(default = "default_rms_eps")]
    pub rms_norm_eps: f64,
}

fn default_max_positions() -> usize {
    2048
}
fn default_rope_theta() -> f64 {
    1e6
}
fn default_rms_eps() -> f64 {
    1e-6
}

/// Bytes per parameter to load a model: the f32 weights, and their copy in the backend.
pub const BYTES_PER_PARAM_LOAD: u128 = 8;
/// Bytes per parameter to train one: weights, gradients, AdamW's two moments, a copy.
pub const BYTES_PER_PARAM_TRAIN: u128 = 20;

/// The named sizes: `tiny` (~1M parameters, tests), `small` (~10M, CPU experiments) and `paper`
/// (12 × 768, 12 heads, 2 KV heads, MLP 3072: 101.9M parameters with the domain vocabulary).
pub const PRESETS: [&str; 3] = ["tiny", "small", "paper"];

impl ModelConfig {
    /// A preset by name with the given vocabulary size.
    pub fn preset(name: &str, vocab_size: usize) -> Option<ModelConfig> {
        let (hidden, layers, heads, kv, mlp) = match name {
            "tiny" => (128, 4, 4, 2, 512),
            "small" => (384, 6, 6, 2, 1024),
            "paper" => (768, 12, 12, 2, 3072),
            _ => return None,
        };
        Some(ModelConfig {
            vocab_size,
            hidden_size: hidden,
            num_hidden_layers: layers,
            num_attention_heads: heads,
            num_key_value_heads: kv,
            intermediate_size: mlp,
            max_position_embeddings: default_max_positions(),
            rope_theta: default_rope_theta(),
            rms_norm_eps: default_rms_eps(),
        })
    }

    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }

    /// Checks the dimensions fit together; the message names the offending field.
    pub fn validate(&self) -> Result<(), ModelConfigError> {
        let positive = [
            ("vocab_size", self.vocab_size),
            ("hidden_size", self.hidden_size),
            ("num_hidden_layers", self.num_hidden_layers),
            ("num_attention_heads", self.num_attention_heads),
            ("num_key_value_heads", self.num_key_value_heads),
            ("intermediate_size", self.intermediate_size),
            ("max_position_embeddings", self.max_position_embeddings),
        ];
        for (name, v) in positive {
            if v == 0 {
                return Err(E::Zero { key: name });
            }
        }
        if self.hidden_size % self.num_attention_heads != 0 {
            return Err(E::NotMultiple {
                key: "hidden_size",
                value: self.hidden_size,
                of: "num_attention_heads",
                of_value: self.num_attention_heads,
            });
        }
        if self.head_dim() % 2 != 0 {
            return Err(E::OddHeadDim {
                head_dim: self.head_dim(),
            });
        }
        if self.num_attention_heads % self.num_key_value_heads != 0 {
            return Err(E::NotMultiple {
                key: "num_attention_heads",
                value: self.num_attention_heads,
                of: "num_key_value_heads",
                of_value: self.num_key_value_heads,
            });
        }
        for (name, v) in [
            ("rope_theta", self.rope_theta),
            ("rms_norm_eps", self.rms_norm_eps),
        ] {
            if !(v > 0.0 && v.is_finite()) {
                return Err(E::NotPositive {
                    key: name,
                    value: v,
                });
            }
        }
        Ok(())
    }

    /// [`ModelConfig::n_params`] in checked 128-bit arithmetic (`None`: it overflows), so
    /// absurd dimensions cannot wrap.
    pub fn n_params_checked(&self) -> Option<u128> {
        let w = |x: usize| x as u128;
        let d = w(self.hidden_size);
        let kv = w(self.num_key_value_heads).checked_mul(w(self.head_dim()))?;
        let dd = d.checked_mul(d)?;
        let dkv = d.checked_mul(kv)?.checked_add(kv)?;
        let attn = dd
            .checked_mul(2)?
            .checked_add(d)?
            .checked_add(dkv.checked_mul(2)?)?;
        let mlp = d.checked_mul(w(self.intermediate_size))?.checked_mul(3)?;
        let layer = attn.checked_add(mlp)?.checked_add(d.checked_mul(2)?)?;
        w(self.vocab_size)
            .checked_mul(d)?
            .checked_add(w(self.num_hidden_layers).checked_mul(layer)?)?
            .checked_add(d)
    }

    /// Checks the model fits in memory at `bytes_per_param` (4 to hold f32 weights, 16 to
    /// train them: weights, gradients and AdamW's two moments) before anything is allocated.
    pub fn check_fits(&self, bytes_per_param: u128) -> Result<(), ModelConfigError> {
        let n = self.n_params_checked();
        crate::limits::check_fits(
            &format!(
                "a model of {} parameters (hidden_size {}, num_hidden_layers {}, intermediate_size {}, vocab_size {})",
                n.map_or("too many".to_string(), |n| n.to_string()),
                self.hidden_size,
                self.num_hidden_layers,
                self.intermediate_size,
                self.vocab_size
            ),
            n.and_then(|n| n.checked_mul(bytes_per_param)),
        )
        .map_err(E::Memory)
    }

    /// Number of parameters (tied embeddings counted once).
    pub fn n_params(&self) -> usize {
        let d = self.hidden_size;
        let kv = self.num_key_value_heads * self.head_dim();
        let attn = d * d + d + 2 * (d * kv + kv) + d * d;
        let mlp = 3 * d * self.intermediate_size;
        let layer = attn + mlp + 2 * d;
        self.vocab_size * d + self.num_hidden_layers * layer + d
    }

    /// Training FLOPs per token at sequence length `seq`: 6 N for the matmuls (the tied output
    /// projection included) plus 12 · layers · hidden · seq for attention scores and values
    /// (the PaLM convention, no causal discount).
    pub fn train_flops_per_token(&self, seq: usize) -> f64 {
        6.0 * self.n_params() as f64
            + 12.0 * (self.num_hidden_layers * self.hidden_size * seq) as f64
    }

    /// Hugging Face `config.json` for `Qwen2ForCausalLM`.
    pub fn hf_config(&self, pad_id: u32, eos_id: u32) -> serde_json::Value {
        json!({
            "architectures": ["Qwen2ForCausalLM"],
            "model_type": "qwen2",
            "vocab_size": self.vocab_size,
            "hidden_size": self.hidden_size,
            "intermediate_size": self.intermediate_size,
            "num_hidden_layers": self.num_hidden_layers,
            "num_attention_heads": self.num_attention_heads,
            "num_key_value_heads": self.num_key_value_heads,
            "max_position_embeddings": self.max_position_embeddings,
            "max_window_layers": self.num_hidden_layers,
            "rope_theta": self.rope_theta,
            "rms_norm_eps": self.rms_norm_eps,
            "hidden_act": "silu",
            "tie_word_embeddings": true,
            "use_sliding_window": false,
            "sliding_window": null,
            "attention_dropout": 0.0,
            "initializer_range": 0.02,
            "use_cache": true,
            "torch_dtype": "float32",
            "bos_token_id": eos_id,
            "eos_token_id": eos_id,
            "pad_token_id": pad_id,
        })
    }

    /// Reads the dimensions back from a Hugging Face Qwen2 `config.json`.
    pub fn from_hf_config(v: &serde_json::Value) -> Result<ModelConfig, ModelConfigError> {
        let get = |key: &str| -> Result<usize, ModelConfigError> {
            v.get(key)
                .and_then(|x| x.as_u64())
                .map(|x| x as usize)
                .ok_or_else(|| hf(E::HfInteger { key: key.into() }))
        };
        if let Some(t) = v.get("model_type").and_then(|x| x.as_str()) {
            if t != "qwen2" {
                return Err(hf(E::HfModelType { found: t.into() }));
            }
        }
        check_hf_settings(v).map_err(hf)?;
        if v.get("tie_word_embeddings").and_then(|x| x.as_bool()) == Some(false) {
            return Err(hf(E::HfUnsupported {
                key: "tie_word_embeddings".into(),
                value: "false".into(),
                supported: "dagmath models tie the output projection to the embeddings",
            }));
        }
        let heads = get("num_attention_heads")?;
        let cfg = ModelConfig {
            vocab_size: get("vocab_size")?,
            hidden_size: get("hidden_size")?,
            num_hidden_layers: get("num_hidden_layers")?,
            num_attention_heads: heads,
            num_key_value_heads: v
                .get("num_key_value_heads")
                .and_then(|x| x.as_u64())
                .map(|x| x as usize)
                .unwrap_or(heads),
            intermediate_size: get("intermediate_size")?,
            max_position_embeddings: get("max_position_embeddings")
                .unwrap_or(default_max_positions()),
            rope_theta: hf_rope_theta(v).map_err(hf)?,
            rms_norm_eps: v
                .get("rms_norm_eps")
                .and_then(|x| x.as_f64())
                .unwrap_or(default_rms_eps()),
        };
        cfg.validate().map_err(hf)?;
        // Before any tensor name is built or byte read: the weights must fit in memory.
        cfg.check_fits(BYTES_PER_PARAM_LOAD).map_err(hf)?;
        Ok(cfg)
    }
}

/// RoPE's θ from a `config.json` in either form: top-level `rope_theta` (transformers 4) or
/// `rope_parameters: {rope_theta, rope_type}` (transformers 5). Only the `default` rope type
/// is implemented; a config that gives no θ, or two different ones, is refused rather than
/// read with an assumed default.
fn hf_rope_theta(v: &serde_json::Value) -> Result<f64, ModelConfigError> {
    let top = match v.get("rope_theta") {
        None | Some(serde_json::Value::Null) => None,
        Some(x) => Some(x.as_f64().ok_or_else(|| E::HfNotNumber {
            key: "rope_theta".into(),
            value: x.to_string(),
        })?),
    };
    let mut nested = None;
    for key in ["rope_parameters", "rope_scaling"] {
        let Some(p) = v.get(key).filter(|p| !p.is_null()) else {
            continue;
        };
        let obj = p
            .as_object()
            .ok_or_else(|| E::HfNotObject { key: key.into() })?;
        let kind = obj
            .get("rope_type")
            .or_else(|| obj.get("type"))
            .and_then(|t| t.as_str())
            .unwrap_or("default");
        if kind != "default" {
            return Err(E::HfUnsupported {
                key: format!("{key}.rope_type"),
                value: format!("\"{kind}\""),
                supported: "dagmath implements the default RoPE only",
            });
        }
        for k in obj.keys() {
            if !matches!(k.as_str(), "rope_type" | "type" | "rope_theta") {
                return Err(E::HfUnsupportedKey {
                    key: format!("{key}.{k}"),
                });
            }
        }
        if let Some(t) = obj.get("rope_theta") {
            let t = t.as_f64().ok_or_else(|| E::HfNotNumber {
                key: format!("{key}.rope_theta"),
                value: t.to_string(),
            })?;
            nested = Some((key, t));
        }
    }
    match (top, nested) {
        (Some(a), Some((key, b))) if a != b => Err(E::HfRopeDisagree {
            top: a,
            key,
            nested: b,
        }),
        (Some(a), _) => Ok(a),
        (None, Some((_, b))) => Ok(b),
        (None, None) => Err(E::HfNoRopeTheta),
    }
}

/// Refuses, naming the key, the Qwen2 settings dagmath's model does not implement.
fn check_hf_settings(v: &serde_json::Value) -> Result<(), ModelConfigError> {
    if let Some(act) = v.get("hidden_act").filter(|x| !x.is_null()) {
        if act.as_str() != Some("silu") {
            return Err(E::HfUnsupported {
                key: "hidden_act".into(),
                value: act.to_string(),
                supported: "dagmath implements silu",
            });
        }
    }
    if v.get("use_sliding_window").and_then(|x| x.as_bool()) == Some(true) {
        return Err(E::HfUnsupported {
            key: "use_sliding_window".into(),
            value: "true".into(),
            supported: "dagmath attends over the whole sequence",
        });
    }
    if let Some(types) = v.get("layer_types").and_then(|x| x.as_array()) {
        if let Some(t) = types.iter().find(|t| t.as_str() != Some("full_attention")) {
            return Err(E::HfLayerTypes {
                found: t.to_string(),
            });
        }
    }
    if let (Some(hd), Some(h), Some(n)) = (
        v.get("head_dim").and_then(|x| x.as_u64()),
        v.get("hidden_size").and_then(|x| x.as_u64()),
        v.get("num_attention_heads").and_then(|x| x.as_u64()),
    ) {
        if n > 0 && hd.checked_mul(n) != Some(h) {
            return Err(E::HfHeadDim {
                head_dim: hd,
                hidden: h,
                heads: n,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preset_sizes() {
        let tiny = ModelConfig::preset("tiny", 476).unwrap();
        assert!(
            (900_000..1_200_000).contains(&tiny.n_params()),
            "{}",
            tiny.n_params()
        );
        let small = ModelConfig::preset("small", 476).unwrap();
        assert!(
            (8_000_000..12_000_000).contains(&small.n_params()),
            "{}",
            small.n_params()
        );
        let paper = ModelConfig::preset("paper", 476).unwrap();
        assert!(
            (95_000_000..130_000_000).contains(&paper.n_params()),
            "{}",
            paper.n_params()
        );
        for p in PRESETS {
            ModelConfig::preset(p, 476).unwrap().validate().unwrap();
        }
    }

    #[test]
    fn hf_config_round_trip() {
        let c = ModelConfig::preset("small", 476).unwrap();
        assert_eq!(ModelConfig::from_hf_config(&c.hf_config(0, 1)).unwrap(), c);
    }
}
