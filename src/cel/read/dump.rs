//! The pipe-delimited dump of a PostgreSQL `cel` table (upstream's benchmark seed,
//! `psql -A` output): a header row `id|eventtype|eventtime|...`, `|` between fields, no quoting,
//! `''` for an empty text, times like `2023-07-19 15:21:33.154974-04`.

use std::io::Read;
use std::sync::Arc;

use super::custom_csv::{build, fields};
use super::Layout;
use crate::cel::error::{CelError, Problem};
use crate::cel::record::Cel;

/// How the dump writes an empty text.
const EMPTY: &str = "''";

pub struct DumpReader<R: Read> {
    reader: csv::Reader<R>,
    name: Arc<str>,
    layout: Option<Layout>,
    record: csv::ByteRecord,
    done: bool,
}

impl<R: Read> DumpReader<R> {
    pub fn new(reader: R, name: impl Into<Arc<str>>) -> Self {
        DumpReader {
            reader: csv::ReaderBuilder::new()
                .has_headers(false)
                .flexible(true)
                .delimiter(b'|')
                // `"` is data here (JSON in `extra`), never a quote.
                .quoting(false)
                .from_reader(reader),
            name: name.into(),
            layout: None,
            record: csv::ByteRecord::new(),
            done: false,
        }
    }
}

/// psql's footer (`(1234 rows)`) is not a row.
fn is_footer(fields: &[String]) -> bool {
    fields.len() == 1 && {
        let f = fields[0].trim();
        f.starts_with('(') && f.ends_with(')') && (f.ends_with(" rows)") || f.ends_with(" row)"))
    }
}

impl<R: Read> Iterator for DumpReader<R> {
    type Item = Result<Cel, CelError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.done {
                return None;
            }
            match self.reader.read_byte_record(&mut self.record) {
                Ok(true) => {}
                Ok(false) => {
                    self.done = true;
                    return None;
                }
                Err(err) => {
                    let line = err.position().map(|p| p.line());
                    if matches!(err.kind(), csv::ErrorKind::Io(_)) {
                        self.done = true;
                    }
                    return Some(Err(CelError::new(&self.name, line, Problem::Csv(err.to_string()))));
                }
            }
            let line = self.record.position().map(|p| p.line());
            let fields = fields(&self.record);
            let Some(layout) = &self.layout else {
                let header = Layout::from_names(fields.iter().map(String::as_str));
                if !header.is_cel() {
                    self.done = true;
                    let why = format!("the first line is not a `|`-separated CEL header: {}", header.refusal());
                    return Some(Err(CelError::new(&self.name, line, Problem::NotCel(why))));
                }
                self.layout = Some(header);
                continue;
            };
            if is_footer(&fields) {
                continue;
            }
            return Some(build(layout, &fields, Some(EMPTY)).map_err(|p| CelError::new(&self.name, line, p)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cel::record::EventType;

    const HEADER: &str =
        "id|eventtype|eventtime|userdeftype|cid_name|cid_num|cid_ani|cid_rdnis|cid_dnid|exten|context|\
        channame|appname|appdata|amaflags|accountcode|peeraccount|uniqueid|linkedid|userfield|peer|call_log_id|extra\n";

    fn read(text: &str) -> Vec<Result<Cel, CelError>> {
        DumpReader::new(text.as_bytes(), "dump.csv").collect()
    }

    #[test]
    fn reads_rows_with_empty_marks_and_offsets() {
        let text = HEADER.to_owned()
            + "7|CHAN_START|2024-02-01 09:00:00.5+01|''|Zoé \"Z\"|3001|''|''|''|3002|default|PJSIP/zoe-00000001|''|''|3|''|''|1706774400.1|1706774400.1|''|''|''|''\n"
            + "8|XIVO_INCALL|2024-02-01 09:00:00.75+01|XIVO_INCALL|Zoé|3001|''|''|''|s|did|PJSIP/zoe-00000001|CELGenUserEvent|XIVO_INCALL,t|3|''|''|1706774400.1|1706774400.1|''|''|''|{\"extra\":\"t\"}\n"
            + "(2 rows)\n";
        let rows: Vec<Cel> = read(&text).into_iter().map(Result::unwrap).collect();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].eventtime.to_string(), "2024-02-01T08:00:00.500000Z");
        assert_eq!(rows[0].cid_name, "Zoé \"Z\"");
        assert_eq!(rows[0].userdeftype, "");
        assert_eq!(rows[0].appname, "");
        assert_eq!(rows[1].eventtype, EventType::User("XIVO_INCALL".into()));
        assert_eq!(rows[1].extra().user_text(), Some("t"));
        assert_eq!(rows[1].tenantid, "");
    }

    #[test]
    fn bad_rows_and_bad_files() {
        let text = HEADER.to_owned()
            + "9|HANGUP|2024-02-01 09:00:61|''\n"
            + "10|HANGUP|not a time|''|''|''|''|''|''|''|''|''|''|''|3|''|''|1|1|''|''|''|''\n";
        let rows = read(&text);
        assert_eq!(
            rows[0].as_ref().unwrap_err().to_string(),
            "dump.csv line 2: expected 23 columns, found 4"
        );
        assert_eq!(rows[1].as_ref().unwrap_err().line, Some(3));
        let rows = read("id|name|value\n1|a|b\n");
        assert_eq!(rows.len(), 1);
        assert_eq!(
            rows[0].as_ref().unwrap_err().to_string(),
            "dump.csv line 1: not a CEL file: the first line is not a `|`-separated CEL header: no eventtype or eventtime column"
        );
    }
}
