//! Meetings tables (see migration `m20261125_000004_meetings`).

pub mod inbox {
    use sea_orm::entity::prelude::*;

    /// A webhook delivery exactly as received (the body verbatim, for audit and replay).
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "webhook_inbox")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub source: String,
        pub event: String,
        pub dedupe_key: String,
        pub body: String,
        pub received_at: i64,
        pub processed_at: Option<i64>,
        pub error: Option<String>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod meeting {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "meetings")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub event_uri: String,
        pub name: String,
        pub status: crate::meetings::domain::MeetingStatus,
        pub invitee_uri: String,
        pub invitee_name: String,
        pub invitee_email: String,
        pub invitee_timezone: String,
        pub host_email: String,
        pub start_time: i64,
        pub end_time: i64,
        pub location: String,
        pub canceled_by: Option<String>,
        pub cancel_reason: Option<String>,
        pub canceler_type: Option<String>,
        pub rescheduled_to: Option<String>,
        pub rescheduled_from: Option<String>,
        pub no_show: bool,
        pub no_show_at: Option<i64>,
        pub created_at: i64,
        pub updated_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
