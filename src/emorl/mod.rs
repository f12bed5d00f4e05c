//! The EMORL family (EfficientMORL, reference `emorl.md`): a hierarchical VAE with iterative
//! refinement and a GECO controller. Built up in steps; so far the network, two-stage inference
//! (stage 1 and refinement with its gradient input), the likelihoods and KL terms, the DualGRU
//! cell, GECO, configs and the evaluation metrics. Not yet: the training family, the evaluation
//! command.
pub mod config;
pub mod dual_gru;
pub mod geco;
pub mod inference;
pub mod loss;
pub mod metrics;
pub mod model;
