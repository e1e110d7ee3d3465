//! The Excel workbooks the DOL publishes (`LCA_Disclosure_Data_FY2024_Q4.xlsx`: one
//! sheet, ~96 columns, hundreds of thousands of rows), read row by row.
//!
//! calamine's cell reader streams the worksheet's XML out of the zip as it goes, so
//! memory is the workbook's shared-strings table (every distinct text once) plus one row,
//! whatever the number of rows. Cells become the text a CSV would hold: numbers in their
//! shortest form, date cells as `YYYY-MM-DD`, so the LCA parser reads both alike.

use calamine::{open_workbook, DataRef, Reader, Xlsx};
use std::io::{BufReader, Read, Seek};
use std::path::Path;

/// Whether `path` starts like a zip archive (an `.xlsx` workbook) rather than text.
pub fn is_workbook(path: &Path) -> bool {
    let mut magic = [0u8; 4];
    std::fs::File::open(path).and_then(|mut f| f.read_exact(&mut magic)).is_ok() && magic == *b"PK\x03\x04"
}

/// Where a workbook read has got to.
#[derive(Clone, Copy, Debug)]
pub struct Position {
    /// The row just read, counting from 1 as Excel does.
    pub row: u64,
    /// The sheet's last row, from its declared dimensions (0 when it declares none).
    pub last_row: u64,
}

/// Calls `each` with the first worksheet's rows in order (the header first), each as
/// its fields' text; stops early when `each` returns `false`. Empty rows are skipped.
pub fn for_each_row(path: &Path, mut each: impl FnMut(Position, Vec<String>) -> bool) -> Result<(), String> {
    let mut workbook: Xlsx<BufReader<std::fs::File>> =
        open_workbook(path).map_err(|e| format!("not a readable .xlsx workbook: {e}"))?;
    let sheet = workbook.sheet_names().first().cloned().ok_or("the workbook has no worksheet")?;
    rows_of(&mut workbook, &sheet, &mut each)
}

fn rows_of<RS: Read + Seek>(workbook: &mut Xlsx<RS>, sheet: &str, each: &mut impl FnMut(Position, Vec<String>) -> bool) -> Result<(), String> {
    let mut cells = workbook.worksheet_cells_reader(sheet).map_err(|e| format!("cannot read worksheet {sheet:?}: {e}"))?;
    let last_row = cells.dimensions().end.0 as u64 + 1;
    let mut current: Option<u32> = None;
    let mut fields: Vec<String> = Vec::new();
    loop {
        let cell = cells.next_cell().map_err(|e| format!("unreadable cell after row {}: {e}", current.map_or(0, |r| r + 1)))?;
        let Some(cell) = cell else { break };
        let (row, col) = cell.get_position();
        if current != Some(row) {
            if let Some(done) = current.filter(|_| fields.iter().any(|f| !f.is_empty())) {
                if !each(Position { row: done as u64 + 1, last_row }, std::mem::take(&mut fields)) {
                    return Ok(());
                }
            }
            fields.clear();
            current = Some(row);
        }
        let col = col as usize;
        if fields.len() <= col {
            fields.resize(col + 1, String::new());
        }
        fields[col] = text(cell.get_value());
    }
    if let Some(done) = current.filter(|_| fields.iter().any(|f| !f.is_empty())) {
        each(Position { row: done as u64 + 1, last_row }, fields);
    }
    Ok(())
}

/// A cell as the text a CSV export would hold.
fn text(value: &DataRef<'_>) -> String {
    match value {
        DataRef::String(s) | DataRef::DateTimeIso(s) | DataRef::DurationIso(s) => s.clone(),
        DataRef::SharedString(s) => (*s).to_owned(),
        DataRef::Int(i) => i.to_string(),
        // `{}` prints the shortest form that reads back the same: 120000, 45.5.
        DataRef::Float(f) => f.to_string(),
        DataRef::Bool(b) => if *b { "TRUE" } else { "FALSE" }.to_owned(),
        DataRef::DateTime(dt) if dt.is_datetime() => match dt.as_datetime() {
            Some(t) => t.date().format("%Y-%m-%d").to_string(),
            None => dt.as_f64().to_string(),
        },
        DataRef::DateTime(dt) => dt.as_f64().to_string(),
        DataRef::Error(_) | DataRef::Empty => String::new(),
    }
}
