//! Weights on the host in Hugging Face layout (`[out, in]` linear weights, `model.`-prefixed
//! names): seeded initialisation, conversion to and from the burn model, and safetensors files.

use std::collections::BTreeMap;
use std::path::Path;

use burn::module::Param;
use burn::nn::{Embedding, Linear, RmsNorm};
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use safetensors::tensor::{Dtype, TensorView};

use super::qwen2::{hf_shapes, Attention, DecoderLayer, Mlp, Qwen2};
use super::ModelConfig;

/// One tensor on the host, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct HostTensor {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

/// Named tensors, sorted by name.
pub type Weights = BTreeMap<String, HostTensor>;

#[derive(Debug, thiserror::Error)]
pub enum WeightsError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: not a safetensors file: {msg}")]
    Format { path: String, msg: String },
    #[error("{path}: tensor {name}: unsupported dtype {dtype} (expected F32, F16 or BF16)")]
    Dtype {
        path: String,
        name: String,
        dtype: String,
    },
    #[error("weights: tensor {name} is missing")]
    Missing { name: String },
    #[error("weights: tensor {name} has shape {got:?}, the config needs {want:?}")]
    Shape {
        name: String,
        got: Vec<usize>,
        want: Vec<usize>,
    },
    #[error("weights: unexpected tensor {name} (not part of a Qwen2 model with this config)")]
    Unexpected { name: String },
}

/// Qwen2's initialisation (normal with std 0.02 for matrices, zero biases, unit norms), drawn
/// from a seed per (seed, tensor name) so it is the same on every backend and in every order.
pub fn init(config: &ModelConfig, seed: u64) -> Weights {
    let mut out = Weights::new();
    for (name, shape) in hf_shapes(config) {
        let n: usize = shape.iter().product();
        let data = if name.ends_with("norm.weight") {
            vec![1.0; n]
        } else if name.ends_with(".bias") {
            vec![0.0; n]
        } else {
            let mut rng = ChaCha8Rng::seed_from_u64(seed ^ crate::composer::seed::str_key(&name));
            normal_vec(&mut rng, n, 0.02)
        };
        out.insert(name, HostTensor { shape, data });
    }
    out
}

/// `n` draws of N(0, std²) by Box–Muller.
fn normal_vec(rng: &mut ChaCha8Rng, n: usize, std: f32) -> Vec<f32> {
    let mut v = Vec::with_capacity(n + 1);
    while v.len() < n {
        let u1: f64 = 1.0 - rng.random::<f64>(); // (0, 1]
        let u2: f64 = rng.random::<f64>();
        let r = (-2.0 * u1.ln()).sqrt();
        let a = std::f64::consts::TAU * u2;
        v.push((r * a.cos()) as f32 * std);
        v.push((r * a.sin()) as f32 * std);
    }
    v.truncate(n);
    v
}

/// Builds the burn model from Hugging Face-layout weights, checking every name and shape.
/// A stored `lm_head.weight` is accepted only when it equals the embedding (tied weights).
pub fn to_model<B: Backend>(
    config: &ModelConfig,
    weights: &Weights,
    device: &B::Device,
) -> Result<Qwen2<B>, WeightsError> {
    let shapes = hf_shapes(config);
    for (name, want) in &shapes {
        let t = weights
            .get(name)
            .ok_or_else(|| WeightsError::Missing { name: name.clone() })?;
        if &t.shape != want {
            return Err(WeightsError::Shape {
                name: name.clone(),
                got: t.shape.clone(),
                want: want.clone(),
            });
        }
    }
    for (name, t) in weights {
        if shapes.iter().any(|(n, _)| n == name) {
            continue;
        }
        let tied = name == "lm_head.weight"
            && weights.get("model.embed_tokens.weight").map(|e| &e.data) == Some(&t.data);
        if !tied {
            return Err(WeightsError::Unexpected { name: name.clone() });
        }
    }
    let get = |name: &str| &weights[name];
    let vector = |name: &str| -> Param<Tensor<B, 1>> {
        let t = get(name);
        Param::from_tensor(Tensor::from_data(
            TensorData::new(t.data.clone(), [t.shape[0]]),
            device,
        ))
    };
    // Hugging Face stores [out, in]; burn's Linear holds [in, out].
    let matrix_t = |name: &str| -> Param<Tensor<B, 2>> {
        let t = get(name);
        let (rows, cols) = (t.shape[0], t.shape[1]);
        let mut data = vec![0.0f32; rows * cols];
        for r in 0..rows {
            for c in 0..cols {
                data[c * rows + r] = t.data[r * cols + c];
            }
        }
        Param::from_tensor(Tensor::from_data(
            TensorData::new(data, [cols, rows]),
            device,
        ))
    };
    let linear = |prefix: &str, bias: bool| Linear {
        weight: matrix_t(&format!("{prefix}.weight")),
        bias: bias.then(|| vector(&format!("{prefix}.bias"))),
    };
    let norm = |name: &str| RmsNorm {
        gamma: vector(name),
        epsilon: config.rms_norm_eps,
    };
    let embed = get("model.embed_tokens.weight");
    let layers = (0..config.num_hidden_layers)
        .map(|i| {
            let p = format!("model.layers.{i}");
            DecoderLayer {
                self_attn: Attention {
                    q_proj: linear(&format!("{p}.self_attn.q_proj"), true),
                    k_proj: linear(&format!("{p}.self_attn.k_proj"), true),
                    v_proj: linear(&format!("{p}.self_attn.v_proj"), true),
                    o_proj: linear(&format!("{p}.self_attn.o_proj"), false),
                    n_heads: config.num_attention_heads,
                    n_kv_heads: config.num_key_value_heads,
                    head_dim: config.head_dim(),
                },
                mlp: Mlp {
                    gate_proj: linear(&format!("{p}.mlp.gate_proj"), false),
                    up_proj: linear(&format!("{p}.mlp.up_proj"), false),
                    down_proj: linear(&format!("{p}.mlp.down_proj"), false),
                },
                input_layernorm: norm(&format!("{p}.input_layernorm.weight")),
                post_attention_layernorm: norm(&format!("{p}.post_attention_layernorm.weight")),
            }
        })
        .collect();
    Ok(Qwen2 {
        embed_tokens: Embedding {
            weight: Param::from_tensor(Tensor::from_data(
                TensorData::new(embed.data.clone(), embed.shape.clone()),
                device,
            )),
        },
        layers,
        norm: norm("model.norm.weight"),
        head_dim: config.head_dim(),
        rope_theta: config.rope_theta,
    })
}

/// Reads the model's weights back to the host in Hugging Face layout (f32).
pub fn from_model<B: Backend>(model: &Qwen2<B>) -> Weights {
    let mut out = Weights::new();
    let mut put = |name: String, t: HostTensor| {
        out.insert(name, t);
    };
    put(
        "model.embed_tokens.weight".into(),
        host(model.embed_tokens.weight.val()),
    );
    for (i, layer) in model.layers.iter().enumerate() {
        let p = format!("model.layers.{i}");
        let a = &layer.self_attn;
        for (name, lin) in [
            ("self_attn.q_proj", &a.q_proj),
            ("self_attn.k_proj", &a.k_proj),
            ("self_attn.v_proj", &a.v_proj),
            ("self_attn.o_proj", &a.o_proj),
            ("mlp.gate_proj", &layer.mlp.gate_proj),
            ("mlp.up_proj", &layer.mlp.up_proj),
            ("mlp.down_proj", &layer.mlp.down_proj),
        ] {
            put(
                format!("{p}.{name}.weight"),
                host(lin.weight.val().transpose()),
            );
            if let Some(b) = &lin.bias {
                put(format!("{p}.{name}.bias"), host(b.val()));
            }
        }
        put(
            format!("{p}.input_layernorm.weight"),
            host(layer.input_layernorm.gamma.val()),
        );
        put(
            format!("{p}.post_attention_layernorm.weight"),
            host(layer.post_attention_layernorm.gamma.val()),
        );
    }
    put("model.norm.weight".into(), host(model.norm.gamma.val()));
    out
}

/// Copies a tensor to the host as f32, row-major.
pub fn host<B: Backend, const D: usize>(t: Tensor<B, D>) -> HostTensor {
    let shape = t.dims().to_vec();
    let data = ndarray_f32(&t).unwrap_or_else(|| {
        t.into_data()
            .convert::<f32>()
            .into_vec::<f32>()
            .expect("f32 data after convert")
    });
    HostTensor { shape, data }
}

/// A row-major f32 tensor of burn's ndarray backend copied with one `memcpy`. burn's own
/// `into_data` walks a tensor that is still shared (a parameter's, say) element by element
/// through a dynamic-rank iterator, which made reading the weights a tenth of a fused
/// training step. `None` for other backends, dtypes and layouts.
fn ndarray_f32<B: Backend, const D: usize>(t: &Tensor<B, D>) -> Option<Vec<f32>> {
    use burn::backend::ndarray::NdArrayTensor;
    let prim = t.clone().into_primitive().tensor();
    match (&prim as &dyn std::any::Any).downcast_ref::<NdArrayTensor>()? {
        NdArrayTensor::F32(storage) => storage.view().as_slice().map(<[f32]>::to_vec),
        _ => None,
    }
}

/// Writes named f32 tensors as a safetensors file (temporary file + rename), with string
/// metadata in the header.
pub fn save_safetensors(
    path: &Path,
    tensors: &Weights,
    metadata: Option<std::collections::HashMap<String, String>>,
) -> Result<(), WeightsError> {
    let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = tensors
        .iter()
        .map(|(name, t)| {
            let mut b = Vec::with_capacity(t.data.len() * 4);
            for x in &t.data {
                b.extend_from_slice(&x.to_le_bytes());
            }
            (name.clone(), t.shape.clone(), b)
        })
        .collect();
    let views: Vec<(String, TensorView<'_>)> = bytes
        .iter()
        .map(|(name, shape, b)| {
            let view = TensorView::new(Dtype::F32, shape.clone(), b).expect("consistent view");
            (name.clone(), view)
        })
        .collect();
    let data = safetensors::serialize(views, metadata).map_err(|e| WeightsError::Format {
        path: path.display().to_string(),
        msg: e.to_string(),
    })?;
    crate::fs::write_atomic(path, &data).map_err(|(at, source)| WeightsError::Io {
        path: at.display().to_string(),
        source,
    })
}

/// Reads a safetensors file as f32 tensors (F16 and BF16 are widened).
pub fn load_safetensors(path: &Path) -> Result<Weights, WeightsError> {
    let p = || path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| WeightsError::Io { path: p(), source })?;
    let st = safetensors::SafeTensors::deserialize(&bytes).map_err(|e| WeightsError::Format {
        path: p(),
        msg: e.to_string(),
    })?;
    let mut out = Weights::new();
    for (name, view) in st.tensors() {
        let raw = view.data();
        let data: Vec<f32> = match view.dtype() {
            Dtype::F32 => raw
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
            Dtype::BF16 => raw
                .chunks_exact(2)
                .map(|c| f32::from_bits((u16::from_le_bytes([c[0], c[1]]) as u32) << 16))
                .collect(),
            Dtype::F16 => raw
                .chunks_exact(2)
                .map(|c| burn::tensor::f16::from_bits(u16::from_le_bytes([c[0], c[1]])).to_f32())
                .collect(),
            other => {
                return Err(WeightsError::Dtype {
                    path: p(),
                    name,
                    dtype: format!("{other:?}"),
                })
            }
        };
        out.insert(
            name,
            HostTensor {
                shape: view.shape().to_vec(),
                data,
            },
        );
    }
    Ok(out)
}

/// Reads only the string metadata of a safetensors file's header.
pub fn safetensors_metadata(
    path: &Path,
) -> Result<std::collections::HashMap<String, String>, WeightsError> {
    let p = || path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| WeightsError::Io { path: p(), source })?;
    let (_, meta) =
        safetensors::SafeTensors::read_metadata(&bytes).map_err(|e| WeightsError::Format {
            path: p(),
            msg: e.to_string(),
        })?;
    Ok(meta.metadata().clone().unwrap_or_default())
}
