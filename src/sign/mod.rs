//! Signing images and their attestations with a key, in the format cosign verifies.

pub mod cosign;
pub mod key;

pub use key::{PublicKey, Signer};
