//! Wage portal: LCA wage filings and BLS OEWS market percentiles, filtered, grouped into
//! box-and-whisker statistics and drawn against the market.

pub mod domain;
pub mod levels;
pub mod stats;
mod api;
mod views;

ssr_modules! {
    pub mod analytics;
    pub mod demo;
    pub mod jobs;
    pub mod http;
    pub mod import;
    pub mod lca;
    pub mod market;
    pub mod oews;
    pub mod settings;
    pub mod service;
    pub mod store;
    pub mod xlsx;
}

pub use domain::*;
pub use views::WagesPage;
pub use api::*;
