//! Wage portal: LCA wage filings and BLS OEWS market percentiles, filtered, grouped into
//! box-and-whisker statistics and drawn against the market.

pub mod domain;
pub mod levels;
pub mod stats;
mod api;
mod views;

#[cfg(feature = "ssr")]
pub mod analytics;
#[cfg(feature = "ssr")]
pub mod demo;
#[cfg(feature = "ssr")]
pub mod jobs;
#[cfg(feature = "ssr")]
pub mod http;
#[cfg(feature = "ssr")]
pub mod import;
#[cfg(feature = "ssr")]
pub mod lca;
#[cfg(feature = "ssr")]
pub mod market;
#[cfg(feature = "ssr")]
pub mod oews;
#[cfg(feature = "ssr")]
pub mod settings;
#[cfg(feature = "ssr")]
pub mod service;
#[cfg(feature = "ssr")]
pub mod store;
#[cfg(feature = "ssr")]
pub mod xlsx;

pub use domain::*;
pub use views::WagesPage;
pub use api::*;
