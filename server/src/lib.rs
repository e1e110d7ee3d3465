//! The Switchboard server: configuration, start-up, router assembly, the job runner and
//! the command line. Capabilities live in the `app` crate; this crate only wires them.

pub mod compose;
pub mod jobs;
pub mod openapi;
pub mod ops;
pub mod serve;
pub mod startup;
pub mod telemetry;

pub use startup::{Application, Options};
