//! Training: the configs ([`config`]), the data pipeline over Parquet shards ([`data`]), AdamW
//! and the schedule ([`optim`]), checkpoints ([`checkpoint`]), metrics and the curves
//! ([`metrics`]), the device choice ([`device`]), the errors ([`error`]), and the run skeleton
//! ([`run`]: start/resume, the run folder, the metrics log, compute, checkpoint cadence, the
//! observer, the backend dispatch) with its two loops: pre-/mid-training ([`trainer`]) and
//! GRPO ([`rl`], with the objective in [`grpo`]).

pub mod batch;
pub mod checkpoint;
pub mod config;
pub mod data;
pub mod device;
pub mod error;
pub mod grpo;
pub mod metrics;
pub mod optim;
pub mod rl;
pub mod run;
pub mod trainer;

pub use config::TrainConfig;
pub use error::{RunError, TrainError};
pub use run::{dispatch, Observer, Phase, Row, Silent, Start, Summary};
pub use trainer::{train, LmPhase, TrainBackend, TrainOutcome, TrainSummary};
