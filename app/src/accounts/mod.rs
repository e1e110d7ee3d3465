//! Accounts: sign-up, log-in/out, sessions, roles and personal API tokens.

pub mod domain;
mod api;
mod views;

ssr_modules! {
    pub mod jobs;
    pub mod http;
    pub mod settings;
    pub mod service;
    pub mod store;
}

pub use domain::{Caller, Credential, Role, Scope, Viewer};
pub use views::{AccountPage, LoginPage, ProfileCard, SignupPage, UserMenu};
pub use api::*;
