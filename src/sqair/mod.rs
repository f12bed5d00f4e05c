//! SQAIR, Sequential Attend, Infer, Repeat (`reference/sqair.md`): a sequential VAE that
//! discovers, propagates and forgets objects, on moving multi-MNIST (`data::seq_mnist`).
pub mod dist;
pub mod model;
pub mod nets;
pub mod seq;
pub mod stn;
