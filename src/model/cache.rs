//! The key/value cache for incremental decoding. It lives outside the model's modules (the
//! llama-burn pattern): the engine owns it and passes it to [`Qwen2::forward_cached`], so the
//! model stays a plain `Module` that training and export see unchanged.
//!
//! [`Qwen2::forward_cached`]: super::Qwen2::forward_cached

use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};

use super::Qwen2;

/// One layer's keys and values, preallocated to the capacity: `[batch, kv_heads, cap, hd]`.
#[derive(Debug, Clone)]
pub struct LayerCache<B: Backend> {
    pub k: Tensor<B, 4>,
    pub v: Tensor<B, 4>,
}

/// Keys and values of every layer for the first [`KvCache::len`] positions of each row.
#[derive(Debug, Clone)]
pub struct KvCache<B: Backend> {
    pub layers: Vec<LayerCache<B>>,
    len: usize,
    capacity: usize,
}

impl<B: Backend> KvCache<B> {
    /// An empty cache for `batch` rows of up to `capacity` positions of `model`.
    pub fn new(model: &Qwen2<B>, batch: usize, capacity: usize, device: &B::Device) -> Self {
        let attn = &model.layers[0].self_attn;
        let shape = [batch, attn.n_kv_heads, capacity, attn.head_dim];
        let layers = model
            .layers
            .iter()
            .map(|_| LayerCache {
                k: Tensor::zeros(shape, device),
                v: Tensor::zeros(shape, device),
            })
            .collect();
        KvCache {
            layers,
            len: 0,
            capacity,
        }
    }

    /// Cached positions per row (padding included).
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    pub fn batch(&self) -> usize {
        self.layers.first().map_or(0, |l| l.k.dims()[0])
    }

    pub(super) fn advance(&mut self, t: usize) {
        assert!(
            self.len + t <= self.capacity,
            "KV cache overflow: {} + {t} positions > capacity {}",
            self.len,
            self.capacity
        );
        self.len += t;
    }

    /// Keep the rows `rows` (in that order; an index may repeat): fans a prompt's cache out to
    /// its samples, and drops finished rows.
    pub fn select_rows(&mut self, rows: &[usize]) {
        let Some(first) = self.layers.first() else {
            return;
        };
        let device = first.k.device();
        let ids: Vec<i64> = rows.iter().map(|&r| r as i64).collect();
        let idx = Tensor::<B, 1, Int>::from_data(TensorData::new(ids, [rows.len()]), &device);
        for l in &mut self.layers {
            l.k = l.k.clone().select(0, idx.clone());
            l.v = l.v.clone().select(0, idx.clone());
        }
    }
}
