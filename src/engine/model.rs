//! The burn model as a [`Decoder`]: a [`Qwen2`] with a [`KvCache`] kept beside it. Prompts of
//! different lengths share a batch by left padding: each row's rotary positions start at 0
//! after its padding, and an additive mask hides the padding (and, while prefilling, the
//! positions after each query).

use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};

use super::{Decoder, DecoderKind};
use crate::model::fused::HostDecoder;
use crate::model::{KvCache, Qwen2};

/// The decoder `kind` asks for: with `auto`, the host decoder when `B` is the CPU backend
/// (`train::device::CpuInference`), else the burn model's own.
pub fn decoder_for<'m, B: Backend>(
    model: &'m Qwen2<B>,
    device: &B::Device,
    kind: DecoderKind,
) -> Box<dyn Decoder + 'm> {
    let cpu =
        std::any::TypeId::of::<B>() == std::any::TypeId::of::<crate::train::device::CpuInference>();
    match kind {
        DecoderKind::Host => Box::new(HostDecoder::new(model)),
        DecoderKind::Auto if cpu => Box::new(HostDecoder::new(model)),
        DecoderKind::Auto | DecoderKind::Burn => Box::new(ModelDecoder::new(model, device)),
    }
}

/// Masked scores are pushed this far down: exp underflows to exactly 0, and a row with
/// nothing visible (a padding query) stays finite instead of turning into NaN.
const MASKED: f32 = -1.0e30;

pub struct ModelDecoder<'m, B: Backend> {
    model: &'m Qwen2<B>,
    device: B::Device,
    cache: Option<KvCache<B>>,
    /// Left padding of each row.
    pad: Vec<usize>,
    positions: Vec<usize>,
    mask: Vec<f32>,
}

impl<'m, B: Backend> ModelDecoder<'m, B> {
    pub fn new(model: &'m Qwen2<B>, device: &B::Device) -> Self {
        ModelDecoder {
            model,
            device: device.clone(),
            cache: None,
            pad: Vec::new(),
            positions: Vec::new(),
            mask: Vec::new(),
        }
    }

    fn cache(&mut self) -> &mut KvCache<B> {
        self.cache.as_mut().expect("prefill before step")
    }

    /// The cache, after a prefill.
    pub fn kv_cache(&self) -> Option<&KvCache<B>> {
        self.cache.as_ref()
    }
}

impl<B: Backend> Decoder for ModelDecoder<'_, B> {
    fn vocab_size(&self) -> usize {
        self.model.config_dims().0
    }

    fn prefill(&mut self, prompts: &[&[u32]], capacity: usize, out: &mut Vec<f32>) {
        let b = prompts.len();
        let t = prompts.iter().map(|p| p.len()).max().unwrap_or(0).max(1);
        self.pad = prompts.iter().map(|p| t - p.len()).collect();
        let mut ids = Vec::with_capacity(b * t);
        self.positions.clear();
        self.mask.clear();
        for (p, &pad) in prompts.iter().zip(&self.pad) {
            ids.extend(std::iter::repeat_n(0i64, pad));
            ids.extend(p.iter().map(|&x| x as i64));
            self.positions.extend((0..t).map(|i| i.saturating_sub(pad)));
            for q in 0..t {
                self.mask
                    .extend((0..t).map(|k| if k < pad || k > q { MASKED } else { 0.0 }));
            }
        }
        let tokens = Tensor::<B, 2, Int>::from_data(TensorData::new(ids, [b, t]), &self.device);
        let mask = Tensor::<B, 4>::from_data(
            TensorData::new(std::mem::take(&mut self.mask), [b, 1, t, t]),
            &self.device,
        );
        let mut cache = KvCache::new(self.model, b, capacity.max(t + 1), &self.device);
        let logits =
            self.model
                .forward_cached(tokens, &self.positions, Some(mask), &mut cache, true);
        self.cache = Some(cache);
        host_logits(logits, out);
        // Next position of each row: its prompt length.
        self.positions = prompts.iter().map(|p| p.len()).collect();
    }

    fn select(&mut self, rows: &[usize]) {
        self.pad = rows.iter().map(|&r| self.pad[r]).collect();
        self.positions = rows.iter().map(|&r| self.positions[r]).collect();
        self.cache().select_rows(rows);
    }

    fn step(&mut self, tokens: &[u32], out: &mut Vec<f32>) {
        let b = tokens.len();
        let ids: Vec<i64> = tokens.iter().map(|&x| x as i64).collect();
        let tokens = Tensor::<B, 2, Int>::from_data(TensorData::new(ids, [b, 1]), &self.device);
        let keys = self.cache.as_ref().map_or(0, |c| c.len()) + 1;
        let mask = if self.pad.iter().any(|&p| p > 0) {
            self.mask.clear();
            for &pad in &self.pad {
                self.mask
                    .extend((0..keys).map(|k| if k < pad { MASKED } else { 0.0 }));
            }
            Some(Tensor::<B, 4>::from_data(
                TensorData::new(std::mem::take(&mut self.mask), [b, 1, 1, keys]),
                &self.device,
            ))
        } else {
            None
        };
        let positions = std::mem::take(&mut self.positions);
        let cache = self.cache.as_mut().expect("prefill before step");
        let logits = self
            .model
            .forward_cached(tokens, &positions, mask, cache, true);
        self.positions = positions.into_iter().map(|p| p + 1).collect();
        host_logits(logits, out);
    }
}

/// `[b, 1, vocab]` → host f32, row-major.
fn host_logits<B: Backend>(logits: Tensor<B, 3>, out: &mut Vec<f32>) {
    let data = logits.into_data().convert::<f32>();
    out.clear();
    out.extend(data.iter::<f32>());
}
