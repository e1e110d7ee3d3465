//! Small column builders shared by the migrations, so every table spells ids, timestamps
//! and payloads the same way on both engines.

use sea_orm_migration::prelude::*;

/// `BIGINT` auto-increment primary key (SQLite maps it to its rowid alias).
pub fn id<T: IntoIden>(name: T) -> ColumnDef {
    ColumnDef::new(name).big_integer().not_null().auto_increment().primary_key().take()
}

/// Milliseconds since the Unix epoch.
pub fn millis<T: IntoIden>(name: T) -> ColumnDef {
    ColumnDef::new(name).big_integer().not_null().take()
}

pub fn millis_null<T: IntoIden>(name: T) -> ColumnDef {
    ColumnDef::new(name).big_integer().null().take()
}

pub fn big<T: IntoIden>(name: T) -> ColumnDef {
    ColumnDef::new(name).big_integer().not_null().take()
}

pub fn big_null<T: IntoIden>(name: T) -> ColumnDef {
    ColumnDef::new(name).big_integer().null().take()
}

pub fn int<T: IntoIden>(name: T) -> ColumnDef {
    ColumnDef::new(name).integer().not_null().take()
}

pub fn boolean<T: IntoIden>(name: T) -> ColumnDef {
    ColumnDef::new(name).boolean().not_null().take()
}

pub fn varchar<T: IntoIden>(name: T, len: u32) -> ColumnDef {
    ColumnDef::new(name).string_len(len).not_null().take()
}

pub fn varchar_null<T: IntoIden>(name: T, len: u32) -> ColumnDef {
    ColumnDef::new(name).string_len(len).null().take()
}

/// Unbounded text. `LONGTEXT` on MySQL (plain `TEXT` stops at 64 KiB); SQLite accepts
/// the same type name with TEXT affinity.
pub fn long_text<T: IntoIden>(name: T) -> ColumnDef {
    ColumnDef::new(name).custom(Alias::new("longtext")).not_null().take()
}

pub fn long_text_null<T: IntoIden>(name: T) -> ColumnDef {
    ColumnDef::new(name).custom(Alias::new("longtext")).null().take()
}

pub fn index(name: &str, table: impl IntoIden) -> IndexCreateStatement {
    Index::create().name(name).table(table).to_owned()
}
