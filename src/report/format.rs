//! Query results as text: an aligned table for people, JSON (an array of objects) and CSV for tools.

use arrow::array::RecordBatch;

use super::ReportError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    Table,
    Json,
    Csv,
}

/// Formats `batches`; an empty result is `[]` in JSON, a header only in CSV, `(no rows)` as a table.
pub fn format_batches(
    batches: &[RecordBatch],
    format: OutputFormat,
) -> Result<String, ReportError> {
    let error = |e: arrow::error::ArrowError| ReportError::Format(e.to_string());
    let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
    match format {
        OutputFormat::Table => {
            if rows == 0 {
                return Ok("(no rows)".to_string());
            }
            Ok(arrow::util::pretty::pretty_format_batches(batches)
                .map_err(error)?
                .to_string())
        }
        OutputFormat::Json => {
            let mut writer = arrow::json::ArrayWriter::new(Vec::new());
            let refs: Vec<&RecordBatch> = batches.iter().collect();
            writer.write_batches(&refs).map_err(error)?;
            writer.finish().map_err(error)?;
            let bytes = writer.into_inner();
            let text = String::from_utf8(bytes).map_err(|e| ReportError::Format(e.to_string()))?;
            Ok(if text.trim().is_empty() {
                "[]".to_string()
            } else {
                text
            })
        }
        OutputFormat::Csv => {
            let mut out = Vec::new();
            {
                let mut writer = arrow::csv::WriterBuilder::new()
                    .with_header(true)
                    .build(&mut out);
                for batch in batches {
                    writer.write(&flatten_lists(batch)?).map_err(error)?;
                }
            }
            String::from_utf8(out).map_err(|e| ReportError::Format(e.to_string()))
        }
    }
}

/// CSV has no lists: list columns become their items joined by `;`.
fn flatten_lists(batch: &RecordBatch) -> Result<RecordBatch, ReportError> {
    use std::sync::Arc;

    use arrow::array::{Array, ArrayRef, ListArray, StringBuilder};
    use arrow::datatypes::{DataType, Field, Schema};
    use arrow::util::display::ArrayFormatter;

    let mut fields = Vec::new();
    let mut columns: Vec<ArrayRef> = Vec::new();
    for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
        let Some(list) = column.as_any().downcast_ref::<ListArray>() else {
            fields.push(field.as_ref().clone());
            columns.push(column.clone());
            continue;
        };
        let mut joined = StringBuilder::new();
        for row in 0..list.len() {
            if list.is_null(row) {
                joined.append_null();
                continue;
            }
            let items = list.value(row);
            let formatter = ArrayFormatter::try_new(items.as_ref(), &Default::default())
                .map_err(|e| ReportError::Format(e.to_string()))?;
            let parts: Vec<String> = (0..items.len())
                .map(|i| formatter.value(i).to_string())
                .collect();
            joined.append_value(parts.join(";"));
        }
        fields.push(Field::new(field.name(), DataType::Utf8, true));
        columns.push(Arc::new(joined.finish()));
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
        .map_err(|e| ReportError::Format(e.to_string()))
}
