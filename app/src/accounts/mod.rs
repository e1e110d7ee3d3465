//! Accounts: sign-up, log-in/out, sessions, roles and personal API tokens.

pub mod domain;
mod api;
mod views;

#[cfg(feature = "ssr")]
pub mod jobs;
#[cfg(feature = "ssr")]
pub mod http;
#[cfg(feature = "ssr")]
pub mod settings;
#[cfg(feature = "ssr")]
pub mod service;
#[cfg(feature = "ssr")]
pub mod store;

pub use domain::{Caller, Credential, Role, Scope, Viewer};
pub use views::{AccountPage, LoginPage, ProfileCard, SignupPage, UserMenu};
pub use api::*;
