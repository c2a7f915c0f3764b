//! cel_custom's JSON writer: one object per line, with its own key names (`name`, `num`,
//! `eventextra` …), `eventtime` a float of epoch seconds and `amaflags` a number.

use std::io::BufRead;
use std::sync::Arc;

use serde_json::Value;

use super::{Field, RawRow};
use crate::cel::error::{CelError, Problem};
use crate::cel::eventtime::EventTime;
use crate::cel::record::Cel;

pub struct JsonlReader<R: BufRead> {
    reader: R,
    name: Arc<str>,
    line: u64,
    seen_row: bool,
    buf: Vec<u8>,
    done: bool,
}

impl<R: BufRead> JsonlReader<R> {
    pub fn new(reader: R, name: impl Into<Arc<str>>) -> Self {
        JsonlReader {
            reader,
            name: name.into(),
            line: 0,
            seen_row: false,
            buf: Vec::new(),
            done: false,
        }
    }
}

fn row(object: serde_json::Map<String, Value>) -> Result<Cel, Problem> {
    let mut raw = RawRow::default();
    for (key, value) in &object {
        let Some(field) = Field::from_column(key) else {
            continue;
        };
        match value {
            Value::String(s) => raw.set(field, s),
            Value::Null => {}
            Value::Number(n) if field == Field::EventTime => {
                let time = match n.as_i64() {
                    Some(secs) => secs.checked_mul(1_000_000).map(EventTime::from_micros),
                    None => n.as_f64().and_then(EventTime::from_epoch_f64),
                };
                match time {
                    Some(t) => raw.set_time(t),
                    None => raw.set(field, &n.to_string()),
                }
            }
            other => raw.set(field, &other.to_string()),
        }
    }
    raw.into_cel()
}

impl<R: BufRead> Iterator for JsonlReader<R> {
    type Item = Result<Cel, CelError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.done {
                return None;
            }
            self.buf.clear();
            match self.reader.read_until(b'\n', &mut self.buf) {
                Ok(0) => {
                    self.done = true;
                    return None;
                }
                Ok(_) => self.line += 1,
                Err(err) => {
                    self.done = true;
                    return Some(Err(CelError::new(
                        &self.name,
                        Some(self.line + 1),
                        Problem::Io(err.to_string()),
                    )));
                }
            }
            let text = String::from_utf8_lossy(&self.buf);
            let text = text.trim_start_matches('\u{feff}').trim();
            if text.is_empty() {
                continue;
            }
            let fail = |p| Some(Err(CelError::new(&self.name, Some(self.line), p)));
            let object = match serde_json::from_str::<Value>(text) {
                Ok(Value::Object(object)) => object,
                Ok(other) => return fail(Problem::Json(format!("found {}", kind(&other)))),
                Err(err) => return fail(Problem::Json(err.to_string())),
            };
            if !self.seen_row {
                self.seen_row = true;
                if !object.contains_key("eventtype") && !object.contains_key("eventtime") {
                    self.done = true;
                    return fail(Problem::NotCel("the first object has no eventtype or eventtime".into()));
                }
            }
            return Some(row(object).map_err(|p| CelError::new(&self.name, Some(self.line), p)));
        }
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cel::record::EventType;

    fn read(text: &str) -> Vec<Result<Cel, CelError>> {
        JsonlReader::new(text.as_bytes(), "cel.jsonl").collect()
    }

    #[test]
    fn reads_cel_custom_objects() {
        let text = r#"{"eventtype":"ACCENT_INCALL","eventtime":1795874894.647590,"userdeftype":"ACCENT_INCALL","name":"PSTN Caller","num":"0612345678","channame":"PJSIP/pstn-trunk-00000008","amaflags":3,"uniqueid":"1795874894.8","linkedid":"1795874894.8","eventextra":"{\"extra\":\"t\"}"}

{"eventtype":"HANGUP","eventtime":"2026-11-28 14:08:20.5","amaflags":null}
{"eventtype":"HANGUP","eventtime":1795874900}
"#;
        let rows: Vec<Cel> = read(text).into_iter().map(Result::unwrap).collect();
        assert_eq!(rows[0].eventtype, EventType::User("ACCENT_INCALL".into()));
        assert_eq!(rows[0].eventtime.micros(), 1_795_874_894_647_590);
        assert_eq!(rows[0].cid_name, "PSTN Caller");
        assert_eq!(rows[0].amaflags, 3);
        assert_eq!(rows[0].extra().user_text(), Some("t"));
        assert_eq!(rows[1].eventtime.micros(), 1_795_874_900_500_000);
        assert_eq!(rows[2].eventtime.micros(), 1_795_874_900_000_000);
    }

    #[test]
    fn bad_lines_name_their_line() {
        let text = "{\"eventtype\":\"CHAN_START\",\"eventtime\":1}\n{\"eventtype\":\n[1]\n{\"eventtime\":2}\n{\"eventtype\":\"X\",\"eventtime\":\"noon\"}\n";
        let rows = read(text);
        assert!(rows[0].is_ok());
        assert!(rows[1]
            .as_ref()
            .unwrap_err()
            .to_string()
            .starts_with("cel.jsonl line 2: not a JSON object"));
        assert_eq!(
            rows[2].as_ref().unwrap_err().to_string(),
            "cel.jsonl line 3: not a JSON object: found an array"
        );
        assert_eq!(
            rows[3].as_ref().unwrap_err().to_string(),
            "cel.jsonl line 4: no eventtype"
        );
        assert_eq!(rows[4].as_ref().unwrap_err().line, Some(5));
        let rows = read("{\"type\":\"StasisStart\"}\n{\"type\":\"StasisEnd\"}\n");
        assert_eq!(rows.len(), 1);
        assert!(rows[0].as_ref().unwrap_err().is_fatal());
    }
}
