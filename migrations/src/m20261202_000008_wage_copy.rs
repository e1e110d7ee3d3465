//! Wage statistics, counts and record listings are now answered by an in-memory copy of
//! the records (`app::wages::analytics`), so the per-filter indexes only slowed imports
//! down (each row updated six indexes): only the primary key and the unique case number
//! stay. `imported_at` stamps each write, which lets MySQL tell an upsert's new rows from
//! its updated ones by the affected-row count alone.

use crate::columns::*;
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum WageRecords {
    Table,
    ImportedAt,
}

const DROPPED: &[&str] =
    &["ix_wage_records_employer", "ix_wage_records_title", "ix_wage_records_soc", "ix_wage_records_place", "ix_wage_records_year"];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for name in DROPPED {
            m.drop_index(Index::drop().name(*name).table(WageRecords::Table).to_owned()).await?;
        }
        m.alter_table(Table::alter().table(WageRecords::Table).add_column(millis_null(WageRecords::ImportedAt)).to_owned()).await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(Table::alter().table(WageRecords::Table).drop_column(WageRecords::ImportedAt).to_owned()).await?;
        Ok(())
    }
}
