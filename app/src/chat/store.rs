//! Chat tables (see migration `m20261124_000003_chat`).

pub mod message {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "chat_messages")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        /// The recipient.
        pub username: String,
        pub sender_id: Option<i64>,
        pub sender: Option<String>,
        pub text: String,
        pub created_at: i64,
        pub expiration_date: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod archived {
    use sea_orm::entity::prelude::*;

    /// Where an archived message lives: line `line` of the batch object `batch_key`.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "chat_archive")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub message_id: i64,
        pub username: String,
        pub sender_id: Option<i64>,
        pub batch_key: String,
        pub line: i32,
        pub archived_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod batch {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "chat_batches")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub object_key: String,
        pub messages: i32,
        pub first_id: i64,
        pub last_id: i64,
        pub created_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
