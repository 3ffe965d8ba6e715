//! Operations: what each command does, over the stages (resolve, plan, fetch, pack, image,
//! sinks and transports). The CLI parses arguments into these functions' options and renders
//! what they return; nothing here knows about clap.
//!
//! A [`session::Session`] carries what one command shares between its builds.

pub mod attest;
pub mod build;
pub mod diff;
pub mod init;
pub mod inspect;
pub mod open;
pub mod push;
pub mod session;
pub mod ship;
pub mod signed;
pub mod test;
pub mod upgrade;
pub mod verify;

pub use session::Session;
