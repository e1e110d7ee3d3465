//! Wage tables (see migration `m20261127_000006_wages`).

pub mod record {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "wage_records")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub case_number: String,
        pub case_status: String,
        pub received_date: Option<String>,
        pub decision_date: Option<String>,
        pub fiscal_year: i32,
        pub employer_name: String,
        pub job_title: String,
        pub soc_code: String,
        pub soc_title: String,
        pub worksite_city: String,
        pub worksite_state: String,
        pub wage_from: Option<f64>,
        pub wage_to: Option<f64>,
        pub wage_unit: String,
        pub annual_wage: f64,
        pub prevailing_wage: Option<f64>,
        pub pw_unit: Option<String>,
        pub pw_level: Option<String>,
        pub annual_prevailing: Option<f64>,
        /// `lca` (an imported filing) or `synthetic` (generated demo data).
        pub source: String,
        pub import_id: Option<i64>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod market {
    use sea_orm::entity::prelude::*;

    /// OEWS annual wage percentiles of one occupation in one area.
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "wage_market")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub area_code: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub soc_code: String,
        /// N national, S state, M metropolitan area.
        pub area_type: String,
        pub area_name: String,
        pub state_code: String,
        pub occupation_name: String,
        pub employment: Option<f64>,
        pub mean: Option<f64>,
        pub p10: Option<f64>,
        pub p25: Option<f64>,
        pub p50: Option<f64>,
        pub p75: Option<f64>,
        pub p90: Option<f64>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod import {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "wage_imports")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub kind: String,
        pub filename: String,
        pub object_key: Option<String>,
        pub state: String,
        pub bytes_total: i64,
        pub bytes_done: i64,
        pub rows_new: i64,
        pub rows_updated: i64,
        pub rows_bad: i64,
        /// JSON array of `{line, reason}` (the first 100 bad rows).
        pub errors: String,
        pub created_by: Option<i64>,
        pub created_at: i64,
        pub finished_at: Option<i64>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
