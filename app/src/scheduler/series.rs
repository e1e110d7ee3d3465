//! Changing part of a series, inside the caller's transaction with the series row
//! locked: one occurrence (a row of its own, its start added to the series' exceptions),
//! an occurrence and the following ones (the series ends before it and a new series
//! starts there), or all of them. Exceptions and changed occurrences keep their place in
//! the series when it moves: 09:00 → 10:00 moves a skipped 09:00 to 10:00 too.

use super::occurrences::{self, Item};
use super::recurrence::{self, decode_exceptions, encode_exceptions, shift_local, Rule};
use super::service::{announce, insert, limit_revived, next_version, settle, write_fields, Fields};
use super::store::event;
use crate::error::{AppError, AppResult};
use crate::platform::db::WriteTxn;
use chrono::Duration;
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder};

/// A change to apply to an event's fields (`Sync`: it is held across awaits).
type Change<'a> = &'a (dyn Fn(Fields) -> AppResult<Fields> + Sync);

fn rule_of(series: &event::Model) -> AppResult<Rule> {
    occurrences::rule(series).ok_or_else(|| AppError::internal_because(format!("series {} has no rule that reads", series.id)))
}

/// The series' rule and anchor, if it has an occurrence starting at `t` (a 400 naming
/// `occurrence` if not).
fn occurrence_of(series: &event::Model, t: i64) -> AppResult<(Rule, recurrence::Anchor)> {
    let (rule, at) = (rule_of(series)?, occurrences::anchor(series));
    if !rule.has_start(&at, t) {
        return Err(AppError::invalid("occurrence", format!("the series has no occurrence starting at {}", crate::platform::time::to_rfc3339(t))));
    }
    Ok((rule, at))
}

/// Refuses one more skipped or changed occurrence past [`recurrence::MAX_EXCEPTIONS`].
fn room_for_exception(skipped: &[i64]) -> AppResult<()> {
    if skipped.len() >= recurrence::MAX_EXCEPTIONS {
        return Err(AppError::invalid("occurrence", format!("a series may have at most {} changed or deleted occurrences", recurrence::MAX_EXCEPTIONS)));
    }
    Ok(())
}

/// The occurrences of `series_id` changed on their own (from `from` on), by start in the series.
pub async fn changed_occurrences(conn: &impl ConnectionTrait, series_id: i64, from: Option<i64>) -> AppResult<Vec<event::Model>> {
    let mut q = event::Entity::find().filter(event::Column::SeriesId.eq(series_id));
    if let Some(from) = from {
        q = q.filter(event::Column::RecurrenceAt.gte(from));
    }
    Ok(q.order_by_asc(event::Column::RecurrenceAt).all(conn).await?)
}

/// Changes one occurrence: it becomes a row of its own and the series skips its start.
pub async fn change_occurrence(txn: &WriteTxn, series: &event::Model, t: i64, change: Change<'_>, owner: &str) -> AppResult<Item> {
    let (_, at) = occurrence_of(series, t)?;
    let mut skipped = decode_exceptions(series.exceptions.as_deref());
    if skipped.contains(&t) {
        let changed = event::Entity::find()
            .filter(event::Column::SeriesId.eq(series.id))
            .filter(event::Column::RecurrenceAt.eq(t))
            .one(&**txn)
            .await?;
        return Err(match changed {
            Some(c) => AppError::conflict("changed_on_its_own", format!("this occurrence was changed on its own: change event {}", c.id)).on_field("occurrence"),
            None => AppError::invalid("occurrence", "this occurrence was deleted"),
        });
    }
    room_for_exception(&skipped)?;
    let mut base = Fields::from(series);
    (base.start_at, base.end_at, base.recurrence) = (t, at.end_of(t), None);
    let f = change(base)?;
    if f.recurrence.is_some() {
        return Err(AppError::invalid(recurrence::FIELD, "one occurrence cannot repeat: change the following occurrences or all of them"));
    }
    let e = insert(txn, series.owner_id, &settle(f, false)?, Some((series.id, t)), None).await?;
    skipped.push(t);
    let mut row: event::ActiveModel = series.clone().into();
    row.exceptions = Set(encode_exceptions(&skipped));
    next_version(&mut row, series);
    event::Entity::update(row).exec(&**txn).await?;
    let item = Item::single(e);
    announce(txn, "event:updated", &item, owner).await?;
    Ok(item)
}

/// Changes the occurrence at `t` and all after it: the series ends before `t`, and a new
/// series (with what is left of its `COUNT`) starts there with the change.
pub async fn split(txn: &WriteTxn, series: &event::Model, t: i64, change: Change<'_>, owner: &str) -> AppResult<Item> {
    let (rule, at) = occurrence_of(series, t)?;
    let rest_rule = rule.from_occurrence(&at, t);
    let mut base = Fields::from(series);
    (base.start_at, base.end_at, base.recurrence) = (t, at.end_of(t), Some(rest_rule.text()));
    let mut f = change(base.clone())?;
    // A rule the change leaves follows a move to another day; a new one places the start.
    let new_rule = f.recurrence != base.recurrence;
    if !new_rule {
        f.recurrence = Some(follow_move(&rest_rule, &at, t, f.start_at)?.text());
    }
    let rest = settle(f, new_rule)?;
    let by = recurrence::local_difference(at.zone, t, rest.f.start_at);
    let (before, after): (Vec<i64>, Vec<i64>) = decode_exceptions(series.exceptions.as_deref()).into_iter().partition(|x| *x < t);
    end_series_before(txn, series, &rule, t, &before, owner).await?;
    let moved = rest.rule.as_ref().and_then(|_| encode_exceptions(&after.iter().map(|x| shift_local(at.zone, *x, by)).collect::<Vec<_>>()));
    let e = insert(txn, series.owner_id, &rest, None, moved).await?;
    if rest.rule.is_some() {
        move_changed(txn, series, Some(t), e.id, by).await?;
    } else {
        delete_changed(txn, series.id, Some(t), owner).await?;
    }
    let item = Item::single(e);
    announce(txn, "event:created", &item, owner).await?;
    Ok(item)
}

/// Changes the whole series, the change given in the terms of the occurrence at `seen`
/// (none: the first): moving that one by an hour moves every one by an hour. Moving the
/// series moves its exceptions along; making it a single event drops them, with its
/// changed occurrences.
pub async fn change_all(txn: &WriteTxn, series: &event::Model, seen: Option<i64>, change: Change<'_>, owner: &str) -> AppResult<Item> {
    let at = occurrences::anchor(series);
    let mut base = Fields::from(series);
    if let Some(t) = seen.filter(|t| *t != series.start_at) {
        occurrence_of(series, t)?;
        (base.start_at, base.end_at) = (t, at.end_of(t));
    }
    let (seen_start, mut f) = (base.start_at, change(base.clone())?);
    // A rule the change leaves follows a move to another day (Mondays moved a day later
    // are Tuesdays); a new one places the start, as for a new series.
    let new_rule = f.recurrence != base.recurrence;
    if let (Some(rule), false) = (occurrences::rule(series), new_rule) {
        f.recurrence = Some(follow_move(&rule, &at, seen_start, f.start_at)?.text());
    }
    if seen_start != series.start_at {
        // Back to the first occurrence, by the same wall-clock move and length.
        let length = recurrence::local_difference(at.zone, f.start_at, f.end_at);
        f.start_at = shift_local(at.zone, series.start_at, recurrence::local_difference(at.zone, seen_start, f.start_at));
        f.end_at = shift_local(at.zone, f.start_at, length);
    }
    let settled = settle(f, new_rule)?;
    limit_revived(&**txn, series, &settled).await?;
    let by = recurrence::local_difference(at.zone, series.start_at, settled.f.start_at);
    let mut row: event::ActiveModel = series.clone().into();
    write_fields(&mut row, &settled);
    if settled.rule.is_none() {
        delete_changed(txn, series.id, None, owner).await?;
        row.exceptions = Set(None);
    } else if by != Duration::zero() {
        let skipped: Vec<i64> = decode_exceptions(series.exceptions.as_deref()).into_iter().map(|x| shift_local(at.zone, x, by)).collect();
        row.exceptions = Set(encode_exceptions(&skipped));
        move_changed(txn, series, None, series.id, by).await?;
    }
    next_version(&mut row, series);
    let e = event::Entity::update(row).exec(&**txn).await?;
    super::store::raise_longest(&**txn, e.owner_id, e.end_at - e.start_at).await?;
    let item = Item::single(e);
    announce(txn, "event:updated", &item, owner).await?;
    Ok(item)
}

/// Deletes one occurrence: the series skips it (and a row it was changed into goes).
pub async fn skip_occurrence(txn: &WriteTxn, series: &event::Model, t: i64, owner: &str) -> AppResult<()> {
    let (_, at) = occurrence_of(series, t)?;
    let mut skipped = decode_exceptions(series.exceptions.as_deref());
    if skipped.contains(&t) {
        let changed: Vec<event::Model> = changed_occurrences(&**txn, series.id, Some(t)).await?.into_iter().filter(|c| c.recurrence_at == Some(t)).collect();
        if changed.is_empty() {
            return Err(AppError::not_found("occurrence"));
        }
        return delete_rows(txn, changed, owner).await;
    }
    room_for_exception(&skipped)?;
    skipped.push(t);
    let mut row: event::ActiveModel = series.clone().into();
    row.exceptions = Set(encode_exceptions(&skipped));
    next_version(&mut row, series);
    let e = event::Entity::update(row).exec(&**txn).await?;
    let gone = Item { end: at.end_of(t), start: t, occurrence: Some(t), row: e };
    announce(txn, "event:deleted", &gone, owner).await
}

/// Deletes the occurrence at `t` and all after it: the series ends before it.
pub async fn end_before(txn: &WriteTxn, series: &event::Model, t: i64, owner: &str) -> AppResult<()> {
    let (rule, _) = occurrence_of(series, t)?;
    let before: Vec<i64> = decode_exceptions(series.exceptions.as_deref()).into_iter().filter(|x| *x < t).collect();
    end_series_before(txn, series, &rule, t, &before, owner).await?;
    delete_changed(txn, series.id, Some(t), owner).await
}

/// Deletes a series with its changed occurrences.
pub async fn delete_all(txn: &WriteTxn, series: &event::Model, owner: &str) -> AppResult<()> {
    delete_changed(txn, series.id, None, owner).await?;
    event::Entity::delete_by_id(series.id).exec(&**txn).await?;
    announce(txn, "event:deleted", &Item::single(series.clone()), owner).await
}

/// `rule` for an occurrence moved from `from` to `to`: the same if it stays on its local
/// day, else moved by as many days, or a 400 when the rule cannot follow.
fn follow_move(rule: &Rule, at: &recurrence::Anchor, from: i64, to: i64) -> AppResult<Rule> {
    let day = |t: i64| crate::platform::time::zones::to_local(at.zone, t).date_naive();
    let days = (day(to) - day(from)).num_days();
    rule.moved_by_days(at, to, days)
        .ok_or_else(|| AppError::invalid("start", "this series repeats on set days of the month: change its rule to move it to another day"))
}

/// Ends `series` just before `t`, keeping the exceptions `before` it.
async fn end_series_before(txn: &WriteTxn, series: &event::Model, rule: &Rule, t: i64, before: &[i64], owner: &str) -> AppResult<()> {
    let head = rule.ending_before(&occurrences::anchor(series), t);
    let mut row: event::ActiveModel = series.clone().into();
    row.rrule = Set(Some(head.text()));
    row.series_end = Set(head.bound(&occurrences::anchor(series)));
    row.exceptions = Set(encode_exceptions(before));
    next_version(&mut row, series);
    let e = event::Entity::update(row).exec(&**txn).await?;
    announce(txn, "event:updated", &Item::single(e), owner).await
}

async fn delete_rows(txn: &WriteTxn, rows: Vec<event::Model>, owner: &str) -> AppResult<()> {
    for row in rows {
        event::Entity::delete_by_id(row.id).exec(&**txn).await?;
        announce(txn, "event:deleted", &Item::single(row), owner).await?;
    }
    Ok(())
}

async fn delete_changed(txn: &WriteTxn, series_id: i64, from: Option<i64>, owner: &str) -> AppResult<()> {
    let rows = changed_occurrences(&**txn, series_id, from).await?;
    delete_rows(txn, rows, owner).await
}

/// Re-points the changed occurrences of `series` from `from` on to the series `to`, each
/// moved by the wall-clock difference `by`. Within one series they are moved in the
/// order that never puts two on one start, which the unique index would refuse.
async fn move_changed(txn: &WriteTxn, series: &event::Model, from: Option<i64>, to: i64, by: Duration) -> AppResult<()> {
    let zone = occurrences::anchor(series).zone;
    let mut rows = changed_occurrences(&**txn, series.id, from).await?;
    if by > Duration::zero() {
        rows.reverse();
    }
    for row in rows {
        let mut moved: event::ActiveModel = row.clone().into();
        moved.series_id = Set(Some(to));
        moved.recurrence_at = Set(row.recurrence_at.map(|r| shift_local(zone, r, by)));
        event::Entity::update(moved).exec(&**txn).await?;
    }
    Ok(())
}
