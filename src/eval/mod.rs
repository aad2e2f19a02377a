//! Evaluation. [`passk`] is the pure pass@k math (no model involved): the unbiased estimator
//! and its aggregation over problem groups. [`audit`] verifies sampled completions offline and
//! summarises them (pass@k, failure taxonomy, rewards). With the `train` feature, [`run`]
//! loads a dataset's problems and a checkpoint, samples completions on a device and verifies
//! them (what `dagmath eval` and `select` run), [`plot`] draws pass@k curves, and
//! [`report`] writes the study's REPORT.md. [`study`] is the study's statistics: bootstrap
//! intervals over problems, paired differences and verdicts.

pub mod audit;
pub mod passk;
#[cfg(feature = "train")]
pub mod plot;
#[cfg(feature = "train")]
pub mod report;
#[cfg(feature = "train")]
mod report_plots;
#[cfg(feature = "train")]
pub mod run;
pub mod study;

pub use passk::{pass_at_k, pass_at_k_curve, By, Counts, GroupKey, PassAtK, PassRow};
