//! Wage portal: wage records (LCA filings, imported or a labelled synthetic sample), the
//! BLS OEWS market percentiles, and import runs with their progress.

use crate::columns::*;
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum WageRecords {
    Table,
    Id,
    CaseNumber,
    CaseStatus,
    ReceivedDate,
    DecisionDate,
    FiscalYear,
    EmployerName,
    JobTitle,
    SocCode,
    SocTitle,
    WorksiteCity,
    WorksiteState,
    WageFrom,
    WageTo,
    WageUnit,
    AnnualWage,
    PrevailingWage,
    PwUnit,
    PwLevel,
    AnnualPrevailing,
    Source,
    ImportId,
}

#[derive(DeriveIden)]
enum WageMarket {
    Table,
    AreaCode,
    SocCode,
    AreaType,
    AreaName,
    StateCode,
    OccupationName,
    Employment,
    Mean,
    P10,
    P25,
    P50,
    P75,
    P90,
}

#[derive(DeriveIden)]
enum WageImports {
    Table,
    Id,
    Kind,
    Filename,
    ObjectKey,
    State,
    BytesTotal,
    BytesDone,
    RowsNew,
    RowsUpdated,
    RowsBad,
    Errors,
    CreatedBy,
    CreatedAt,
    FinishedAt,
}

fn double<T: IntoIden>(name: T) -> ColumnDef {
    ColumnDef::new(name).double().null().take()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(WageRecords::Table)
                .col(id(WageRecords::Id))
                .col(varchar(WageRecords::CaseNumber, 40))
                .col(varchar(WageRecords::CaseStatus, 40))
                .col(varchar_null(WageRecords::ReceivedDate, 10))
                .col(varchar_null(WageRecords::DecisionDate, 10))
                .col(int(WageRecords::FiscalYear))
                // Upper-cased on import, so filters match alike on both engines.
                .col(varchar(WageRecords::EmployerName, 191))
                .col(varchar(WageRecords::JobTitle, 191))
                .col(varchar(WageRecords::SocCode, 7))
                .col(varchar(WageRecords::SocTitle, 191))
                .col(varchar(WageRecords::WorksiteCity, 100))
                .col(varchar(WageRecords::WorksiteState, 2))
                .col(double(WageRecords::WageFrom))
                .col(double(WageRecords::WageTo))
                .col(varchar(WageRecords::WageUnit, 16))
                .col(ColumnDef::new(WageRecords::AnnualWage).double().not_null())
                .col(double(WageRecords::PrevailingWage))
                .col(varchar_null(WageRecords::PwUnit, 16))
                .col(varchar_null(WageRecords::PwLevel, 8))
                .col(double(WageRecords::AnnualPrevailing))
                // `lca` (an imported filing) or `synthetic` (generated demo data).
                .col(varchar(WageRecords::Source, 16))
                .col(big_null(WageRecords::ImportId))
                .to_owned(),
        )
        .await?;
        m.create_index(index("ux_wage_records_case", WageRecords::Table).col(WageRecords::CaseNumber).unique().to_owned()).await?;
        // One index per filter, each led by the status every query filters on, ending
        // with the wage so box statistics read it from the index.
        for (name, cols) in [
            ("ix_wage_records_employer", vec![WageRecords::CaseStatus, WageRecords::EmployerName, WageRecords::AnnualWage]),
            ("ix_wage_records_title", vec![WageRecords::CaseStatus, WageRecords::JobTitle, WageRecords::AnnualWage]),
            ("ix_wage_records_soc", vec![WageRecords::CaseStatus, WageRecords::SocCode, WageRecords::AnnualWage]),
            ("ix_wage_records_place", vec![WageRecords::CaseStatus, WageRecords::WorksiteState, WageRecords::WorksiteCity, WageRecords::AnnualWage]),
            ("ix_wage_records_year", vec![WageRecords::CaseStatus, WageRecords::FiscalYear, WageRecords::AnnualWage]),
        ] {
            let mut idx = index(name, WageRecords::Table);
            for c in cols {
                idx.col(c);
            }
            m.create_index(idx.to_owned()).await?;
        }

        m.create_table(
            Table::create()
                .table(WageMarket::Table)
                .col(ColumnDef::new(WageMarket::AreaCode).string_len(7).not_null())
                .col(ColumnDef::new(WageMarket::SocCode).string_len(7).not_null())
                // N national, S state, M metropolitan area.
                .col(varchar(WageMarket::AreaType, 1))
                .col(varchar(WageMarket::AreaName, 191))
                .col(varchar(WageMarket::StateCode, 2))
                .col(varchar(WageMarket::OccupationName, 191))
                .col(double(WageMarket::Employment))
                .col(double(WageMarket::Mean))
                .col(double(WageMarket::P10))
                .col(double(WageMarket::P25))
                .col(double(WageMarket::P50))
                .col(double(WageMarket::P75))
                .col(double(WageMarket::P90))
                .primary_key(Index::create().col(WageMarket::AreaCode).col(WageMarket::SocCode))
                .to_owned(),
        )
        .await?;
        m.create_index(
            index("ix_wage_market_soc", WageMarket::Table).col(WageMarket::SocCode).col(WageMarket::AreaType).col(WageMarket::StateCode).to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(WageImports::Table)
                .col(id(WageImports::Id))
                .col(varchar(WageImports::Kind, 16))
                .col(varchar(WageImports::Filename, 255))
                .col(varchar_null(WageImports::ObjectKey, 191))
                // queued, running, done, failed
                .col(varchar(WageImports::State, 16))
                .col(big(WageImports::BytesTotal))
                .col(big(WageImports::BytesDone))
                .col(big(WageImports::RowsNew))
                .col(big(WageImports::RowsUpdated))
                .col(big(WageImports::RowsBad))
                .col(long_text(WageImports::Errors))
                .col(big_null(WageImports::CreatedBy))
                .col(millis(WageImports::CreatedAt))
                .col(millis_null(WageImports::FinishedAt))
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for t in [WageImports::Table.into_iden(), WageMarket::Table.into_iden(), WageRecords::Table.into_iden()] {
            m.drop_table(Table::drop().table(t).to_owned()).await?;
        }
        Ok(())
    }
}
