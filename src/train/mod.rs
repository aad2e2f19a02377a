//! Training: the config ([`config`]), the data pipeline over Parquet shards ([`data`]), AdamW and
//! the schedule ([`optim`]), checkpoints ([`checkpoint`]), metrics and the loss curve
//! ([`metrics`]), the device choice ([`device`]) and the one training loop ([`trainer`]) that
//! pre-training and mid-training share.

pub mod checkpoint;
pub mod config;
pub mod data;
pub mod device;
pub mod grpo;
pub mod metrics;
pub mod optim;
pub mod rl;
pub mod trainer;

pub use config::TrainConfig;
pub use trainer::{train, Silent, Start, TrainBackend, TrainError, TrainObserver, TrainSummary};
