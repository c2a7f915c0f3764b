//! The CSV form of call logs (`Accept: text/csv` or `format=csv`): upstream's columns, then one
//! group of `recording_<n>_<key>` columns per recording of the call with the most.

use serde_json::Value;

use super::model::CallLog;
use crate::api::error::ApiError;

/// Upstream's column order.
const COLUMNS: &[&str] = &[
    "id",
    "tenant_uuid",
    "answered",
    "start",
    "answer",
    "end",
    "destination_extension",
    "destination_name",
    "destination_internal_extension",
    "destination_internal_context",
    "destination_user_uuid",
    "destination_line_id",
    "duration",
    "call_direction",
    "call_status",
    "requested_name",
    "requested_extension",
    "requested_context",
    "requested_internal_extension",
    "requested_internal_context",
    "requested_user_uuid",
    "source_extension",
    "source_name",
    "source_internal_name",
    "source_internal_extension",
    "source_internal_context",
    "source_user_uuid",
    "source_line_id",
    "tags",
];

const RECORDING_KEYS: &[&str] = &["uuid", "start_time", "end_time", "deleted", "filename"];

/// A JSON value as a CSV cell: null is empty, strings bare, lists comma-joined.
fn cell(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Bool(b)) => if *b { "True" } else { "False" }.to_string(),
        Some(Value::Array(items)) => items.iter().map(|i| cell(Some(i))).collect::<Vec<_>>().join(","),
        Some(other) => other.to_string(),
    }
}

pub fn render(logs: &[CallLog]) -> Result<Vec<u8>, ApiError> {
    let recordings = logs.iter().map(|l| l.recordings.len()).max().unwrap_or(0);
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut header: Vec<String> = COLUMNS.iter().map(|c| c.to_string()).collect();
    for n in 1..=recordings {
        header.extend(RECORDING_KEYS.iter().map(|k| format!("recording_{n}_{k}")));
    }
    let internal = |e: csv::Error| ApiError::Internal(format!("csv: {e}"));
    w.write_record(&header).map_err(internal)?;
    for log in logs {
        let v = log.to_json(true);
        let mut row: Vec<String> = COLUMNS.iter().map(|c| cell(v.get(*c))).collect();
        let recs = v.get("recordings").and_then(Value::as_array);
        for n in 0..recordings {
            let rec = recs.and_then(|r| r.get(n));
            row.extend(RECORDING_KEYS.iter().map(|k| cell(rec.and_then(|r| r.get(*k)))));
        }
        w.write_record(&row).map_err(internal)?;
    }
    w.into_inner().map_err(|e| ApiError::Internal(format!("csv: {e}")))
}
