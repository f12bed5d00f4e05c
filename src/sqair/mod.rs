//! SQAIR, Sequential Attend, Infer, Repeat (`reference/sqair.md`): a sequential VAE that
//! discovers, propagates and forgets objects, on moving multi-MNIST (`data::seq_mnist`).
pub mod config;
pub mod dist;
pub mod family;
pub mod model;
pub mod names;
pub mod nets;
pub mod seq;
pub mod stn;
pub mod viz;

pub use family::Sqair;
