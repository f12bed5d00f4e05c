//! The EMORL family (EfficientMORL, reference `emorl.md`): a hierarchical VAE with iterative
//! refinement and a GECO controller, trained by the shared loop (`family.rs`).
pub mod config;
pub mod disentangle;
pub mod dual_gru;
pub mod family;
pub mod geco;
pub mod inference;
pub mod loss;
pub mod metrics;
pub mod model;
pub mod names;
pub mod viz;

pub use family::Emorl;
