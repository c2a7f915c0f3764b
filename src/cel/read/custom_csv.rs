//! cel_custom's CSV writer (`format = dsv`): every field quoted, `"` doubled, one row per line,
//! no header row (our recordings have one added; both are read).

use std::io::Read;
use std::sync::Arc;

use super::{looks_like_custom_row, Layout, RawRow};
use crate::cel::error::{CelError, Problem};
use crate::cel::record::Cel;

/// Rows of a cel_custom CSV. The first record decides the layout: a header naming the columns,
/// or a data row in our `cel_custom.conf` order.
pub struct CustomCsvReader<R: Read> {
    reader: csv::Reader<R>,
    name: Arc<str>,
    layout: Option<Layout>,
    record: csv::ByteRecord,
    done: bool,
}

impl<R: Read> CustomCsvReader<R> {
    pub fn new(reader: R, name: impl Into<Arc<str>>) -> Self {
        CustomCsvReader {
            reader: csv::ReaderBuilder::new()
                .has_headers(false)
                .flexible(true)
                .from_reader(reader),
            name: name.into(),
            layout: None,
            record: csv::ByteRecord::new(),
            done: false,
        }
    }

    fn fail(&self, line: Option<u64>, problem: Problem) -> CelError {
        CelError::new(&self.name, line, problem)
    }
}

/// Fields as text; bytes that are not UTF-8 (a Latin-1 caller name) are replaced rather than
/// losing the row.
pub(crate) fn fields(record: &csv::ByteRecord) -> Vec<String> {
    record.iter().map(|f| String::from_utf8_lossy(f).into_owned()).collect()
}

pub(crate) fn build(layout: &Layout, fields: &[String], empty: Option<&str>) -> Result<Cel, Problem> {
    if fields.len() != layout.len() {
        return Err(Problem::ColumnCount {
            expected: layout.len(),
            found: fields.len(),
        });
    }
    let mut raw = RawRow::default();
    for (i, field) in layout.fields() {
        let value = fields[i].as_str();
        raw.set(field, if Some(value) == empty { "" } else { value });
    }
    raw.into_cel()
}

impl<R: Read> Iterator for CustomCsvReader<R> {
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
                    // An I/O error ends the file; a malformed record is skipped.
                    if matches!(err.kind(), csv::ErrorKind::Io(_)) {
                        self.done = true;
                    }
                    return Some(Err(self.fail(line, Problem::Csv(err.to_string()))));
                }
            }
            let line = self.record.position().map(|p| p.line());
            let fields = fields(&self.record);
            let layout = match &self.layout {
                Some(layout) => layout,
                None => {
                    let header = Layout::from_names(fields.iter().map(String::as_str));
                    if header.is_cel() {
                        self.layout = Some(header);
                        continue;
                    }
                    if !looks_like_custom_row(&fields.iter().map(String::as_str).collect::<Vec<_>>()) {
                        self.done = true;
                        return Some(Err(self.fail(
                            line,
                            Problem::NotCel(format!(
                                "the first line is neither a CEL header nor a cel_custom row of 22 columns \
                                 (found {} columns)",
                                fields.len()
                            )),
                        )));
                    }
                    self.layout.insert(Layout::custom_default())
                }
            };
            return Some(build(layout, &fields, None).map_err(|p| self.fail(line, p)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cel::record::EventType;

    const HEADER: &str = "eventtype,eventtime,userdeftype,cid_name,cid_num,cid_ani,cid_rdnis,cid_dnid,exten,context,\
        channame,appname,appdata,amaflags,accountcode,peeraccount,uniqueid,linkedid,userfield,peer,extra,tenantid\n";

    fn row(kind: &str, time: &str, extra: &str) -> String {
        format!(
            "\"{kind}\",\"{time}\",\"\",\"Alice\",\"2001\",\"\",\"\",\"\",\"2002\",\"from-internal\",\
             \"PJSIP/2001-00000001\",\"\",\"\",\"3\",\"\",\"\",\"1795870000.1\",\"1795870000.1\",\"\",\"\",\"{extra}\",\"\"\n"
        )
    }

    fn read(text: &str) -> Vec<Result<Cel, CelError>> {
        CustomCsvReader::new(text.as_bytes(), "test.csv").collect()
    }

    #[test]
    fn with_and_without_header_read_the_same() {
        let body =
            row("CHAN_START", "1795870000.000001", "") + &row("HANGUP", "1795870005.5", "{\"\"hangupcause\"\":16}");
        let with: Vec<Cel> = read(&(HEADER.to_owned() + &body))
            .into_iter()
            .map(Result::unwrap)
            .collect();
        let without: Vec<Cel> = read(&body).into_iter().map(Result::unwrap).collect();
        assert_eq!(with, without);
        assert_eq!(with.len(), 2);
        assert_eq!(with[0].eventtype, EventType::ChanStart);
        assert_eq!(with[0].eventtime.micros(), 1_795_870_000_000_001);
        assert_eq!(with[0].channame, "PJSIP/2001-00000001");
        assert_eq!(with[0].amaflags, 3);
        assert_eq!(with[1].extra, r#"{"hangupcause":16}"#);
        assert_eq!(with[1].extra().get("hangupcause").as_deref(), Some("16"));
    }

    #[test]
    fn bad_rows_are_reported_with_their_line_and_skipped() {
        let text = HEADER.to_owned()
            + &row("CHAN_START", "1795870000.1", "")
            + "\"ANSWER\",\"1795870001\"\n"
            + &row("ANSWER", "yesterday", "")
            + &row("", "1795870002", "")
            + &row("MIXMONITOR_START", "1795870003", "")
            + &row("CHAN_START", "1795870000.1", "")
            + "\"HANGUP\",\"unterminated\n";
        let rows = read(&text);
        assert_eq!(rows.len(), 7, "{rows:?}");
        assert!(rows[0].is_ok());
        let err = rows[1].as_ref().unwrap_err();
        assert_eq!(err.line, Some(3));
        assert_eq!(err.problem, Problem::ColumnCount { expected: 22, found: 2 });
        assert_eq!(err.to_string(), "test.csv line 3: expected 22 columns, found 2");
        let err = rows[2].as_ref().unwrap_err();
        assert_eq!(err.line, Some(4));
        assert!(
            err.to_string()
                .starts_with("test.csv line 4: bad event time `yesterday`"),
            "{err}"
        );
        assert_eq!(rows[3].as_ref().unwrap_err().problem, Problem::Missing("eventtype"));
        assert_eq!(rows[3].as_ref().unwrap_err().line, Some(5));
        // Unknown types are kept, not refused.
        assert_eq!(
            rows[4].as_ref().unwrap().eventtype,
            EventType::Other("MIXMONITOR_START".into())
        );
        // Duplicates are yielded; the store drops them.
        assert_eq!(rows[5].as_ref().unwrap(), rows[0].as_ref().unwrap());
        assert_eq!(rows[6].as_ref().unwrap_err().line, Some(8));
    }

    #[test]
    fn a_file_that_is_not_cel_is_refused_once() {
        let rows = read("clid,src,dst\n\"a\",\"b\",\"c\"\n");
        assert_eq!(rows.len(), 1);
        let err = rows[0].as_ref().unwrap_err();
        assert!(err.is_fatal());
        assert!(err.to_string().starts_with("test.csv line 1: not a CEL file"), "{err}");
        assert!(read("").is_empty());
    }

    #[test]
    fn user_events_keep_their_name() {
        let text = "\"ACCENT_INCALL\",\"1795874894.647590\",\"ACCENT_INCALL\",\"PSTN Caller\",\"0612345678\",\"\",\"\",\"\",\
                    \"5551000\",\"from-extern\",\"PJSIP/pstn-trunk-00000008\",\"CELGenUserEvent\",\"ACCENT_INCALL,t\",\"3\",\
                    \"\",\"\",\"1795874894.8\",\"1795874894.8\",\"\",\"\",\"{\"\"extra\"\":\"\"t\"\"}\",\"\"\n";
        let cel = read(text).remove(0).unwrap();
        assert_eq!(cel.eventtype, EventType::User("ACCENT_INCALL".into()));
        assert_eq!(cel.userdeftype, "ACCENT_INCALL");
        assert_eq!(cel.extra().user_text(), Some("t"));
    }

    #[test]
    fn percent_encoded_and_latin1_names_are_kept() {
        let mut bytes = row("CHAN_START", "1795870000", "")
            .replace("Alice", "Ren%C3%A9e")
            .into_bytes();
        bytes.extend_from_slice(b"\"CHAN_END\",\"1795870001\",\"\",\"Ren\xe9e\"");
        bytes.extend_from_slice(&b",\"\"".repeat(18));
        bytes.push(b'\n');
        let rows: Vec<_> = CustomCsvReader::new(&bytes[..], "x").collect();
        assert_eq!(rows[0].as_ref().unwrap().cid_name, "Ren%C3%A9e");
        assert_eq!(rows[1].as_ref().unwrap().cid_name, "Ren\u{fffd}e");
    }
}
