//! Rows of named cells as one Parquet file, and back: the tables of `kcompact sweep` and
//! `kcompact census` (and of the Python package's Dask versions of both, which write
//! through the same functions).
//!
//! A row is its cells in column order; the table's columns are every name any row has, in
//! the order they first appear (rows in table order), and a row without a column holds
//! null there. A column's type follows its cells: integers `Int64` (`Float64` once any
//! cell is a float), text `Utf8`, lists of counts `List<Int64>`. The file is written with
//! the `parquet` crate (Snappy pages) to a temporary name beside `path` and renamed over it,
//! so a reader never sees half a table.

use crate::ui::usage;
use anyhow::Context;
use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type};
use arrow_array::{Array, ArrayRef, Float64Array, Int64Array, ListArray, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use serde_json::json;
use std::path::Path;
use std::sync::Arc;

/// One cell of a row.
#[derive(Clone, Debug, PartialEq)]
pub enum Cell {
    /// No value (a column the row lacks, a run that failed).
    Null,
    /// A count.
    Int(i64),
    /// A rate, a mean, a time.
    Float(f64),
    /// Text (names, settings, errors).
    Str(String),
    /// A series of counts (a metric per step, free blocks per order).
    Ints(Vec<i64>),
}

/// A row: `(column, cell)` in column order.
pub type Row = Vec<(String, Cell)>;

/// The cell of `row` named `name`.
pub fn get<'a>(row: &'a Row, name: &str) -> Option<&'a Cell> {
    row.iter().find(|(n, _)| n == name).map(|(_, c)| c)
}

/// A JSON value as a cell: numbers as integers or floats as JSON wrote them, strings,
/// arrays of integers; anything else (objects, booleans, mixed arrays) as its JSON text.
pub fn cell_of_json(v: &serde_json::Value) -> Cell {
    use serde_json::Value;
    match v {
        Value::Null => Cell::Null,
        Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => Cell::Int(i),
            (None, Some(f)) if n.is_f64() => Cell::Float(f),
            _ => Cell::Str(n.to_string()),
        },
        Value::String(s) => Cell::Str(s.clone()),
        Value::Array(a) => match a.iter().map(|x| x.as_i64()).collect::<Option<Vec<_>>>() {
            Some(ints) => Cell::Ints(ints),
            None => Cell::Str(v.to_string()),
        },
        Value::Bool(_) | Value::Object(_) => Cell::Str(v.to_string()),
    }
}

/// A cell as JSON (the inverse of [`cell_of_json`] for what it makes).
pub fn cell_json(c: &Cell) -> serde_json::Value {
    match c {
        Cell::Null => serde_json::Value::Null,
        Cell::Int(i) => json!(i),
        Cell::Float(f) => json!(f),
        Cell::Str(s) => json!(s),
        Cell::Ints(v) => json!(v),
    }
}

/// A row as JSON, `[[column, value], ...]` (column order kept): how rows travel between
/// processes (Dask workers) as text.
pub fn row_to_json(row: &Row) -> String {
    serde_json::Value::Array(row.iter().map(|(n, c)| json!([n, cell_json(c)])).collect())
        .to_string()
}

/// The inverse of [`row_to_json`]; text that is not such a row is bad input.
pub fn row_from_json(text: &str) -> anyhow::Result<Row> {
    let bad = || {
        usage(format!(
            "not a table row (expected [[column, value], ...]): {text:.80}"
        ))
    };
    let Ok(serde_json::Value::Array(cells)) = serde_json::from_str::<serde_json::Value>(text)
    else {
        return bad();
    };
    let mut row = Row::new();
    for c in cells {
        match c.as_array().map(|p| p.as_slice()) {
            Some([serde_json::Value::String(n), v]) => row.push((n.clone(), cell_of_json(v))),
            _ => return bad(),
        }
    }
    Ok(row)
}

/// The type a column's cells need; `None` if they mix text with numbers or lists.
fn column_type<'a>(cells: impl Iterator<Item = &'a Cell>) -> Option<DataType> {
    let mut t: Option<DataType> = None;
    for c in cells {
        let ct = match c {
            Cell::Null => continue,
            Cell::Int(_) => DataType::Int64,
            Cell::Float(_) => DataType::Float64,
            Cell::Str(_) => DataType::Utf8,
            Cell::Ints(_) => DataType::List(Arc::new(Field::new_list_field(DataType::Int64, true))),
        };
        t = Some(match (t, ct) {
            (None, ct) => ct,
            (Some(a), b) if a == b => a,
            (Some(DataType::Int64 | DataType::Float64), DataType::Int64 | DataType::Float64) => {
                DataType::Float64
            }
            _ => return None,
        });
    }
    Some(t.unwrap_or(DataType::Utf8))
}

/// The rows as one Arrow record batch.
pub fn to_batch(rows: &[Row]) -> anyhow::Result<RecordBatch> {
    let mut names: Vec<&str> = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for r in rows {
        for (n, _) in r {
            if seen.insert(n.as_str()) {
                names.push(n);
            }
        }
    }
    let mut fields = Vec::new();
    let mut columns: Vec<ArrayRef> = Vec::new();
    for name in names {
        let cells: Vec<&Cell> = rows
            .iter()
            .map(|r| get(r, name).unwrap_or(&Cell::Null))
            .collect();
        let Some(t) = column_type(cells.iter().copied()) else {
            anyhow::bail!("column {name} mixes text, numbers and lists");
        };
        let col: ArrayRef = match &t {
            DataType::Int64 => Arc::new(Int64Array::from_iter(cells.iter().map(|c| match c {
                Cell::Int(i) => Some(*i),
                _ => None,
            }))),
            DataType::Float64 => Arc::new(Float64Array::from_iter(cells.iter().map(|c| match c {
                Cell::Int(i) => Some(*i as f64),
                Cell::Float(f) => Some(*f),
                _ => None,
            }))),
            DataType::Utf8 => Arc::new(StringArray::from_iter(cells.iter().map(|c| match c {
                Cell::Str(s) => Some(s.as_str()),
                _ => None,
            }))),
            _ => Arc::new(ListArray::from_iter_primitive::<Int64Type, _, _>(
                cells.iter().map(|c| match c {
                    Cell::Ints(v) => Some(v.iter().map(|x| Some(*x)).collect::<Vec<_>>()),
                    _ => None,
                }),
            )),
        };
        fields.push(Field::new(name, col.data_type().clone(), true));
        columns.push(col);
    }
    Ok(RecordBatch::try_new(
        Arc::new(Schema::new(fields)),
        columns,
    )?)
}

/// Writes `rows` to the Parquet file `path`, replacing it whole.
pub fn write_parquet(path: &Path, rows: &[Row]) -> anyhow::Result<()> {
    if rows.is_empty() {
        return usage(format!("{}: no rows to write", path.display()));
    }
    let batch = to_batch(rows)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
    let write = || -> anyhow::Result<()> {
        let f =
            std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        let props = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .build();
        let mut w = ArrowWriter::try_new(f, batch.schema(), Some(props))?;
        w.write(&batch)?;
        w.close()?;
        std::fs::rename(&tmp, path)
            .with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))
    };
    let r = write();
    if r.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    r.with_context(|| format!("writing {}", path.display()))
}

/// The rows of the Parquet file `path` (a table [`write_parquet`] wrote, or one with the
/// same column types); a file that is no such table is bad input naming it.
pub fn read_parquet(path: &Path) -> anyhow::Result<Vec<Row>> {
    let f = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let reader = match ParquetRecordBatchReaderBuilder::try_new(f).and_then(|b| b.build()) {
        Ok(r) => r,
        Err(e) => return usage(format!("{}: not a Parquet file: {e}", path.display())),
    };
    let mut rows = Vec::new();
    for batch in reader {
        let batch = match batch {
            Ok(b) => b,
            Err(e) => return usage(format!("{}: {e}", path.display())),
        };
        let schema = batch.schema();
        let first = rows.len();
        rows.extend((0..batch.num_rows()).map(|_| Row::new()));
        for (field, col) in schema.fields().iter().zip(batch.columns()) {
            let name = field.name();
            for (i, row) in rows[first..].iter_mut().enumerate() {
                let cell = if col.is_null(i) {
                    Cell::Null
                } else {
                    match col.data_type() {
                        DataType::Int64 => Cell::Int(col.as_primitive::<Int64Type>().value(i)),
                        DataType::Float64 => {
                            Cell::Float(col.as_primitive::<Float64Type>().value(i))
                        }
                        DataType::Utf8 => Cell::Str(col.as_string::<i32>().value(i).to_string()),
                        DataType::List(f) if *f.data_type() == DataType::Int64 => {
                            let l = col.as_list::<i32>().value(i);
                            let v = l.as_primitive::<Int64Type>();
                            Cell::Ints((0..v.len()).map(|j| v.value(j)).collect())
                        }
                        t => {
                            return usage(format!(
                                "{}: column {name} is {t}, not a type kcompact writes",
                                path.display()
                            ))
                        }
                    }
                };
                // Nulls are the absence of the column in the row.
                if cell != Cell::Null {
                    row.push((name.clone(), cell));
                }
            }
        }
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(cells: &[(&str, Cell)]) -> Row {
        cells
            .iter()
            .map(|(n, c)| (n.to_string(), c.clone()))
            .collect()
    }

    /// A scratch directory of this test, removed when dropped.
    struct Scratch(std::path::PathBuf);

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn scratch(name: &str) -> Scratch {
        let d = std::env::temp_dir().join(format!("kcompact-table-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        Scratch(d)
    }

    #[test]
    fn a_table_reads_back_as_written_missing_cells_null() {
        let rows = vec![
            row(&[
                ("run", Cell::Str("a".into())),
                ("n", Cell::Int(3)),
                ("by_order", Cell::Ints(vec![1, 0, 2])),
            ]),
            row(&[
                ("run", Cell::Str("b".into())),
                ("error", Cell::Str("boom".into())),
                ("t", Cell::Float(0.5)),
            ]),
        ];
        let dir = scratch("roundtrip");
        let p = dir.0.join("t.parquet");
        write_parquet(&p, &rows).unwrap();
        assert_eq!(read_parquet(&p).unwrap(), rows);
        let b = to_batch(&rows).unwrap();
        let schema = b.schema();
        let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        assert_eq!(names, ["run", "n", "by_order", "error", "t"]);
        assert_eq!(b.column(1).null_count(), 1);
        assert!(!p
            .with_file_name(format!(".t.parquet.tmp-{}", std::process::id()))
            .exists());
    }

    #[test]
    fn a_column_of_integers_and_floats_is_float_and_text_with_numbers_is_refused() {
        let rows = vec![row(&[("x", Cell::Int(2))]), row(&[("x", Cell::Float(1.5))])];
        let b = to_batch(&rows).unwrap();
        assert_eq!(b.schema().field(0).data_type(), &DataType::Float64);
        let mixed = vec![
            row(&[("x", Cell::Int(2))]),
            row(&[("x", Cell::Str("a".into()))]),
        ];
        let e = to_batch(&mixed).unwrap_err().to_string();
        assert!(e.contains("column x mixes"), "{e}");
        let dir = scratch("empty");
        let p = dir.0.join("t.parquet");
        assert!(write_parquet(&p, &[]).is_err());
        assert!(!p.exists());
    }

    #[test]
    fn json_cells_and_rows_round_trip() {
        let v = json!({"i": 7, "f": 2.5, "s": "x", "l": [1, 2], "o": {"a": 1}, "b": true});
        assert_eq!(cell_of_json(&v["i"]), Cell::Int(7));
        assert_eq!(cell_of_json(&v["f"]), Cell::Float(2.5));
        assert_eq!(cell_of_json(&v["l"]), Cell::Ints(vec![1, 2]));
        assert_eq!(cell_of_json(&v["o"]), Cell::Str("{\"a\":1}".into()));
        assert_eq!(cell_of_json(&v["b"]), Cell::Str("true".into()));
        let r = row(&[
            ("z", Cell::Float(1.0)),
            ("a", Cell::Ints(vec![])),
            ("m", Cell::Str("q".into())),
        ]);
        assert_eq!(row_from_json(&row_to_json(&r)).unwrap(), r);
        let e = row_from_json("{\"a\": 1}").unwrap_err();
        assert!(e.is::<crate::ui::Usage>());
    }

    #[test]
    fn a_file_that_is_no_parquet_is_bad_input_naming_it() {
        let dir = scratch("bad");
        let p = dir.0.join("x.parquet");
        std::fs::write(&p, "nope").unwrap();
        let e = read_parquet(&p).unwrap_err();
        assert!(e.is::<crate::ui::Usage>());
        assert!(
            e.to_string().contains("x.parquet: not a Parquet file"),
            "{e}"
        );
    }
}
