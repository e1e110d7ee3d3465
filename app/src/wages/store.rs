//! Wage tables (see migrations `m20261127_000006_wages` and `m20261202_000008_wage_copy`)
//! and the fast writer the imports use.

use crate::db_write;
use super::domain::Filing;
use crate::error::AppResult;
use crate::platform::db::Db;
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict, Query};
use sea_orm::{ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, QueryFilter};
use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};

pub mod record {
    use sea_orm::entity::prelude::*;

    /// The row: an id, the fields every [`super::Filing`] has, and import bookkeeping.
    macro_rules! record_model {
        ($( $(#[$($attr:tt)*])* $field:ident : [$($ty:tt)*], )*) => {
            #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
            #[sea_orm(table_name = "wage_records")]
            pub struct Model {
                #[sea_orm(primary_key)]
                pub id: i64,
                $( $(#[$($attr)*])* pub $field: $($ty)*, )*
                pub import_id: Option<i64>,
                /// When the row was last written (a value unique to its write): makes every
                /// upsert of an existing row a change, so MySQL's affected-row count tells new
                /// rows from updated ones.
                pub imported_at: Option<i64>,
            }

            impl From<Model> for super::Filing {
                fn from(r: Model) -> Self {
                    super::Filing { $( $field: r.$field, )* }
                }
            }
        };
    }
    crate::wages::domain::filing_fields!(record_model!);

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
        pub state: crate::wages::domain::ImportState,
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

/// Rows per INSERT: 22 values each stay under SQLite's 32,766 bound parameters.
const STATEMENT_ROWS: usize = 1000;

/// A write stamp no earlier write had: milliseconds, bumped past the last one.
fn stamp() -> i64 {
    static LAST: AtomicI64 = AtomicI64::new(0);
    let now = crate::platform::time::now_ms() * 1000;
    let mut last = LAST.load(Ordering::Relaxed);
    loop {
        let next = Ord::max(now, last + 1);
        match LAST.compare_exchange_weak(last, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return next,
            Err(seen) => last = seen,
        }
    }
}

/// Writes filings in one transaction, replacing earlier versions of the same case (the
/// last row wins when the batch repeats one); returns (new, updated). Multi-row INSERT …
/// ON CONFLICT statements, no read first: new and updated rows are told apart afterwards
/// — on SQLite, where the write gate makes ids grow in commit order, by counting ids above
/// the batch's starting point; on MySQL from the affected-row count (1 a new row, 2 an
/// update, which the write stamp guarantees to be a change).
pub async fn upsert(db: &Db, filings: &[Filing], import_id: Option<i64>) -> AppResult<(u64, u64)> {
    let mut last: HashMap<&str, usize> = HashMap::with_capacity(filings.len());
    for (i, f) in filings.iter().enumerate() {
        last.insert(&f.case_number, i);
    }
    let unique: Vec<&Filing> = filings.iter().enumerate().filter(|(i, f)| last[f.case_number.as_str()] == *i).map(|(_, f)| f).collect();
    if unique.is_empty() {
        return Ok((0, 0));
    }
    let at = stamp();
    db_write!(db, |txn| {
        let sqlite = db.backend() == DbBackend::Sqlite;
        let before: i64 = if sqlite {
            let q = Query::select().expr(Expr::col(record::Column::Id).max()).from(record::Entity).to_owned();
            txn.query_one(&q).await?.and_then(|r| r.try_get_by_index::<Option<i64>>(0).ok().flatten()).unwrap_or(0)
        } else {
            0
        };
        let mut affected = 0;
        for chunk in unique.chunks(STATEMENT_ROWS) {
            affected += txn.execute(&insert(chunk, import_id, at)).await?.rows_affected();
        }
        let n = unique.len() as u64;
        let new = if sqlite {
            let q = Query::select()
                .expr(Expr::col(record::Column::Id).count())
                .from(record::Entity)
                .and_where(record::Column::Id.gt(before))
                .to_owned();
            txn.query_one(&q).await?.and_then(|r| r.try_get_by_index::<i64>(0).ok()).unwrap_or(0) as u64
        } else {
            n - affected.saturating_sub(n)
        };
        Ok((new, n - new))
    })
}

fn insert(filings: &[&Filing], import_id: Option<i64>, at: i64) -> sea_orm::sea_query::InsertStatement {
    use record::Column as C;
    let columns = [
        C::CaseNumber, C::CaseStatus, C::ReceivedDate, C::DecisionDate, C::FiscalYear, C::EmployerName, C::JobTitle, C::SocCode,
        C::SocTitle, C::WorksiteCity, C::WorksiteState, C::WageFrom, C::WageTo, C::WageUnit, C::AnnualWage, C::PrevailingWage,
        C::PwUnit, C::PwLevel, C::AnnualPrevailing, C::Source, C::ImportId, C::ImportedAt,
    ];
    let mut q = Query::insert();
    q.into_table(record::Entity).columns(columns);
    for f in filings {
        q.values_panic([
            f.case_number.as_str().into(),
            f.case_status.as_str().into(),
            f.received_date.as_deref().into(),
            f.decision_date.as_deref().into(),
            f.fiscal_year.into(),
            f.employer_name.as_str().into(),
            f.job_title.as_str().into(),
            f.soc_code.as_str().into(),
            f.soc_title.as_str().into(),
            f.worksite_city.as_str().into(),
            f.worksite_state.as_str().into(),
            f.wage_from.into(),
            f.wage_to.into(),
            f.wage_unit.as_str().into(),
            f.annual_wage.into(),
            f.prevailing_wage.into(),
            f.pw_unit.as_deref().into(),
            f.pw_level.as_deref().into(),
            f.annual_prevailing.into(),
            f.source.as_str().into(),
            import_id.into(),
            Some(at).into(),
        ]);
    }
    q.on_conflict(OnConflict::column(C::CaseNumber).update_columns(columns.into_iter().skip(1)).to_owned());
    q
}

/// Records by id, in the order asked for (chunked: at most 500 ids a statement).
pub async fn by_ids(db: &Db, ids: &[i64]) -> AppResult<Vec<record::Model>> {
    let mut found: HashMap<i64, record::Model> = HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(500) {
        for r in record::Entity::find().filter(record::Column::Id.is_in(chunk.to_vec())).all(&db.conn).await? {
            found.insert(r.id, r);
        }
    }
    Ok(ids.iter().filter_map(|id| found.remove(id)).collect())
}
