//! Account tables (see migrations `m20261122_000001_foundation` and `m20261201_000007_security`).

pub mod user {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "users")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub username: String,
        pub display_name: String,
        pub password_hash: String,
        pub role: crate::accounts::domain::Role,
        pub time_zone: String,
        pub created_at: i64,
        /// Others see this user's events in full (else only as free/busy).
        pub calendar_shared: bool,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod session {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "sessions")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        /// SHA-256 of the cookie value: a leaked table does not leak live sessions.
        pub token_hash: String,
        pub user_id: i64,
        pub created_at: i64,
        pub expires_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod api_token {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "api_tokens")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub user_id: i64,
        pub name: String,
        pub token_hash: String,
        /// Space-separated scopes, e.g. `chat:read`.
        pub scopes: String,
        pub created_at: i64,
        pub last_used_at: Option<i64>,
        /// After this the token is refused; `None`: it lasts until revoked.
        pub expires_at: Option<i64>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod claim {
    use sea_orm::entity::prelude::*;

    /// A one-of-a-kind role taken by a unique key (today only `first_admin`): of two
    /// racing claimants exactly one inserts the row.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "account_claims")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub claim: String,
        pub user_id: i64,
        pub created_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod setup_token {
    use sea_orm::entity::prelude::*;

    /// A one-time token (its SHA-256) that makes whoever signs up with it the first
    /// administrator; issued at start-up while there is none, all deleted once there is.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "admin_setup_tokens")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub token_hash: String,
        pub created_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
