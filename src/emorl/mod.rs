//! The EMORL family (EfficientMORL, reference `emorl.md`): a hierarchical VAE with iterative
//! refinement and a GECO controller. Built up in steps; so far the network's layers and stage 1,
//! the likelihoods and KL terms, the DualGRU cell and GECO.
pub mod dual_gru;
pub mod geco;
pub mod loss;
pub mod model;
