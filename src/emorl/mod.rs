//! The EMORL family (EfficientMORL, reference `emorl.md`): a hierarchical VAE with iterative
//! refinement and a GECO controller. Built up in steps; so far the network, two-stage inference
//! (stage 1 and refinement with its gradient input), the likelihoods and KL terms, the DualGRU
//! cell and GECO. Not yet: configs, data loading, the training family, evaluation.
pub mod config;
pub mod dual_gru;
pub mod geco;
pub mod inference;
pub mod loss;
pub mod model;
