//! Scheduler tables (see migration `m20261126_000005_scheduler`).

pub mod event {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "calendar_events")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub uid: String,
        pub owner_id: i64,
        pub title: String,
        pub description: String,
        pub location: String,
        pub start_at: i64,
        pub end_at: i64,
        pub all_day: bool,
        pub time_zone: String,
        pub version: i32,
        pub created_at: i64,
        pub updated_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod feed {
    use sea_orm::entity::prelude::*;

    /// A user's secret iCalendar feed address (a capability URL, like Google's
    /// "secret address in iCal format"; rotating it revokes the old one). Looked up by
    /// the token's SHA-256; the token itself is kept only sealed, for its owner to see.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "calendar_feed_tokens")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub user_id: i64,
        pub token_hash: String,
        pub token_sealed: String,
        pub created_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod legacy_feed {
    use sea_orm::entity::prelude::*;

    /// Feed tokens as versions before 2026-12 stored them, in clear; emptied into
    /// [`super::feed`] at start-up.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "calendar_feeds")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub user_id: i64,
        pub token: String,
        pub created_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
