//! gestalt: object-centric (perceptual grouping) models on Burn — N-EM, RNN-EM, R-NEM, EMORL and
//! SQAIR (being built) on one spine: config words, data, one training loop.
// Burn's `slice` takes an array with one range per sliced dimension: a one-range array is right.
#![allow(clippy::single_range_in_vec_init)]
pub mod backend;
pub mod cli;
pub mod config;
pub mod data;
pub mod emorl;
pub mod error;
pub mod metrics;
pub mod nem;
pub mod nn;
pub mod sqair;
pub mod train;
pub mod util;
pub mod viz;
pub mod weights;

pub use error::{Error, Result};
