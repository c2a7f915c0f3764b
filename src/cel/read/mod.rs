//! Readers: every source of CEL rows we meet, each giving `Result<Cel, CelError>` per row.
//!
//! A reader never panics and never stops at a bad row: the error names the source and line and
//! the next row follows. Only a source that is not CEL at all (wrong header, no `cel` table)
//! ends with one error. Duplicated rows are yielded as they are: the store drops them.
//!
//! | source | reader |
//! |---|---|
//! | AMI `Event: CEL` (cel_manager) | [`ami::from_ami`] |
//! | cel_custom CSV, with or without header | [`custom_csv::CustomCsvReader`] |
//! | cel_custom JSON lines | [`jsonl::JsonlReader`] |
//! | cel_sqlite3_custom database | [`sqlite::SqliteReader`] |
//! | pipe-delimited SQL dump (`id|eventtype|eventtime|...`) | [`dump::DumpReader`] |
//!
//! [`open_file`] tells the text kinds apart by their first line ([`detect`]).

pub mod ami;
pub mod custom_csv;
pub mod dump;
pub mod jsonl;
pub mod sqlite;

use std::fs::File;
use std::io::{BufRead, BufReader, Cursor, Read};
use std::path::Path;
use std::sync::Arc;

use super::error::{CelError, Problem};
use super::eventtime::EventTime;
use super::record::{parse_amaflags, Cel, EventType};

/// What a reader yields.
pub type CelRows = Box<dyn Iterator<Item = Result<Cel, CelError>> + Send>;

/// The fields of a CEL row, as the columns of every source name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Field {
    EventType,
    EventTime,
    UserDefType,
    CidName,
    CidNum,
    CidAni,
    CidRdnis,
    CidDnid,
    Exten,
    Context,
    ChanName,
    AppName,
    AppData,
    AmaFlags,
    AccountCode,
    PeerAccount,
    UniqueId,
    LinkedId,
    Userfield,
    Peer,
    Extra,
    TenantId,
}

const FIELD_COUNT: usize = 22;

/// The column order of cel_custom's `fields =` in our `cel_custom.conf` (the files have no header
/// row unless someone added one).
pub(crate) const CUSTOM_ORDER: [Field; FIELD_COUNT] = [
    Field::EventType,
    Field::EventTime,
    Field::UserDefType,
    Field::CidName,
    Field::CidNum,
    Field::CidAni,
    Field::CidRdnis,
    Field::CidDnid,
    Field::Exten,
    Field::Context,
    Field::ChanName,
    Field::AppName,
    Field::AppData,
    Field::AmaFlags,
    Field::AccountCode,
    Field::PeerAccount,
    Field::UniqueId,
    Field::LinkedId,
    Field::Userfield,
    Field::Peer,
    Field::Extra,
    Field::TenantId,
];

impl Field {
    /// A column name of any source: our table and upstream's (`cid_name`), cel_custom's field
    /// names (`Name`, `EventExtra`), cel_sqlite3_custom's (`cidname`, `acctcode`, `peeracct`).
    /// Case and surrounding quotes/spaces do not matter; unknown columns (`id`, `call_log_id`,
    /// `eventenum`) are ignored.
    pub(crate) fn from_column(name: &str) -> Option<Field> {
        let name = name.trim().trim_matches('"').trim().to_ascii_lowercase();
        Some(match name.as_str() {
            "eventtype" | "event_type" => Field::EventType,
            "eventtime" | "event_time" => Field::EventTime,
            "userdeftype" | "usereventname" | "user_defined_type" => Field::UserDefType,
            "cid_name" | "cidname" | "name" => Field::CidName,
            "cid_num" | "cidnum" | "num" => Field::CidNum,
            "cid_ani" | "cidani" | "ani" => Field::CidAni,
            "cid_rdnis" | "cidrdnis" | "rdnis" => Field::CidRdnis,
            "cid_dnid" | "ciddnid" | "dnid" => Field::CidDnid,
            "exten" => Field::Exten,
            "context" => Field::Context,
            "channame" | "channel" => Field::ChanName,
            "appname" => Field::AppName,
            "appdata" => Field::AppData,
            "amaflags" => Field::AmaFlags,
            "accountcode" | "acctcode" => Field::AccountCode,
            "peeraccount" | "peeracct" => Field::PeerAccount,
            "uniqueid" => Field::UniqueId,
            "linkedid" => Field::LinkedId,
            "userfield" => Field::Userfield,
            "peer" => Field::Peer,
            "extra" | "eventextra" => Field::Extra,
            "tenantid" => Field::TenantId,
            _ => return None,
        })
    }

    fn column_name(self) -> &'static str {
        match self {
            Field::EventType => "eventtype",
            Field::EventTime => "eventtime",
            Field::UserDefType => "userdeftype",
            Field::CidName => "cid_name",
            Field::CidNum => "cid_num",
            Field::CidAni => "cid_ani",
            Field::CidRdnis => "cid_rdnis",
            Field::CidDnid => "cid_dnid",
            Field::Exten => "exten",
            Field::Context => "context",
            Field::ChanName => "channame",
            Field::AppName => "appname",
            Field::AppData => "appdata",
            Field::AmaFlags => "amaflags",
            Field::AccountCode => "accountcode",
            Field::PeerAccount => "peeraccount",
            Field::UniqueId => "uniqueid",
            Field::LinkedId => "linkedid",
            Field::Userfield => "userfield",
            Field::Peer => "peer",
            Field::Extra => "extra",
            Field::TenantId => "tenantid",
        }
    }
}

/// How a source's columns map to fields (position → field).
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    columns: Vec<Option<Field>>,
}

impl Layout {
    pub(crate) fn from_names<'a>(names: impl IntoIterator<Item = &'a str>) -> Layout {
        Layout {
            columns: names.into_iter().map(Field::from_column).collect(),
        }
    }

    pub(crate) fn custom_default() -> Layout {
        Layout {
            columns: CUSTOM_ORDER.iter().copied().map(Some).collect(),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.columns.len()
    }

    pub(crate) fn fields(&self) -> impl Iterator<Item = (usize, Field)> + '_ {
        self.columns.iter().enumerate().filter_map(|(i, f)| f.map(|f| (i, f)))
    }

    /// A CEL source has at least an event type and a time.
    pub(crate) fn is_cel(&self) -> bool {
        self.has(Field::EventType) && self.has(Field::EventTime)
    }

    fn has(&self, field: Field) -> bool {
        self.columns.contains(&Some(field))
    }

    /// The columns a call-log generator needs that this source lacks (cel_sqlite3_custom's
    /// sample `columns` has no `linkedid`): worth a warning, not a refusal.
    pub(crate) fn missing(&self) -> Vec<&'static str> {
        [Field::UniqueId, Field::LinkedId, Field::ChanName]
            .into_iter()
            .filter(|f| !self.has(*f))
            .map(Field::column_name)
            .collect()
    }

    /// Why this header is not a CEL one, for the error message.
    pub(crate) fn refusal(&self) -> String {
        let lacking: Vec<&str> = [Field::EventType, Field::EventTime]
            .into_iter()
            .filter(|f| !self.has(*f))
            .map(Field::column_name)
            .collect();
        format!("no {} column", lacking.join(" or "))
    }
}

/// The fields of one row while a reader fills them.
#[derive(Debug, Default)]
pub(crate) struct RawRow {
    values: [String; FIELD_COUNT],
    /// A time already decoded (a float or integer in JSON or SQLite).
    time: Option<EventTime>,
}

impl RawRow {
    pub(crate) fn set(&mut self, field: Field, value: &str) {
        value.clone_into(&mut self.values[field as usize]);
    }

    pub(crate) fn set_time(&mut self, time: EventTime) {
        self.time = Some(time);
    }

    fn take(&mut self, field: Field) -> String {
        std::mem::take(&mut self.values[field as usize])
    }

    pub(crate) fn into_cel(mut self) -> Result<Cel, Problem> {
        let name = self.take(Field::EventType);
        if name.trim().is_empty() {
            return Err(Problem::Missing("eventtype"));
        }
        let eventtime = match self.time {
            Some(t) => t,
            None => {
                let text = self.take(Field::EventTime);
                if text.trim().is_empty() {
                    return Err(Problem::Missing("eventtime"));
                }
                EventTime::parse(&text)?
            }
        };
        let userdeftype = self.take(Field::UserDefType);
        let mut cel = Cel::new(EventType::parse(&name, &userdeftype), eventtime);
        cel.userdeftype = userdeftype;
        cel.cid_name = self.take(Field::CidName);
        cel.cid_num = self.take(Field::CidNum);
        cel.cid_ani = self.take(Field::CidAni);
        cel.cid_rdnis = self.take(Field::CidRdnis);
        cel.cid_dnid = self.take(Field::CidDnid);
        cel.exten = self.take(Field::Exten);
        cel.context = self.take(Field::Context);
        cel.channame = self.take(Field::ChanName);
        cel.appname = self.take(Field::AppName);
        cel.appdata = self.take(Field::AppData);
        cel.amaflags = parse_amaflags(&self.values[Field::AmaFlags as usize]);
        cel.accountcode = self.take(Field::AccountCode);
        cel.peeraccount = self.take(Field::PeerAccount);
        cel.uniqueid = self.take(Field::UniqueId);
        cel.linkedid = self.take(Field::LinkedId);
        cel.userfield = self.take(Field::Userfield);
        cel.peer = self.take(Field::Peer);
        cel.extra = self.take(Field::Extra);
        cel.tenantid = self.take(Field::TenantId);
        Ok(cel.normalise())
    }
}

/// The kinds of text CEL files, told apart by their first line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CsvKind {
    /// cel_custom's CSV with a header row naming the columns.
    CustomWithHeader,
    /// cel_custom's CSV as Asterisk writes it: no header, our `cel_custom.conf` column order.
    CustomNoHeader,
    /// cel_custom's JSON writer, one object per line.
    JsonLines,
    /// A pipe-delimited SQL dump with a header (`id|eventtype|eventtime|...`, `''` for empty).
    PipeDump,
    /// None of the above.
    Unknown,
}

/// Tells the kind of a text CEL file from its first line.
pub fn detect(first_line: &str) -> CsvKind {
    let line = first_line.trim_start_matches('\u{feff}').trim();
    if line.starts_with('{') {
        return CsvKind::JsonLines;
    }
    if line.contains('|') && Layout::from_names(line.split('|')).is_cel() {
        return CsvKind::PipeDump;
    }
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(line.as_bytes());
    let mut record = csv::StringRecord::new();
    if !matches!(reader.read_record(&mut record), Ok(true)) {
        return CsvKind::Unknown;
    }
    if Layout::from_names(record.iter()).is_cel() {
        return CsvKind::CustomWithHeader;
    }
    if looks_like_custom_row(&record.iter().collect::<Vec<_>>()) {
        return CsvKind::CustomNoHeader;
    }
    CsvKind::Unknown
}

/// A data row of cel_custom in our column order: 22 fields, starting with an event name or a
/// readable time (so that a first row with a bad time is a row error, not a refused file).
pub(crate) fn looks_like_custom_row(fields: &[&str]) -> bool {
    if fields.len() != FIELD_COUNT {
        return false;
    }
    let kind = fields[0].trim();
    let time = fields[1];
    let event_like = !kind.is_empty()
        && kind
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
    !kind.is_empty() && (event_like || EventTime::parse(time).is_ok())
}

/// Opens a text CEL file of any kind (gzip-compressed when its name ends in `.gz`), after
/// looking at its first line. A file of no known kind is refused with its name.
pub fn open_file(path: &Path) -> Result<CelRows, CelError> {
    let name: Arc<str> = Arc::from(path.display().to_string());
    let io = |e: std::io::Error| CelError::new(&name, None, Problem::Io(e.to_string()));
    let file = File::open(path).map_err(io)?;
    let raw: Box<dyn Read + Send> = if path.extension().is_some_and(|e| e == "gz") {
        Box::new(flate2::read::GzDecoder::new(file))
    } else {
        Box::new(file)
    };
    let mut reader = BufReader::new(raw);
    let mut first = Vec::new();
    reader.read_until(b'\n', &mut first).map_err(io)?;
    if first.is_empty() {
        // An empty file (a quiet day, a scenario without calls) is a CEL file without rows.
        return Ok(Box::new(std::iter::empty()));
    }
    let kind = detect(&String::from_utf8_lossy(&first));
    // Put the first line back in front of the rest.
    let whole = BufReader::new(Cursor::new(first).chain(reader));
    Ok(match kind {
        CsvKind::CustomWithHeader | CsvKind::CustomNoHeader => Box::new(custom_csv::CustomCsvReader::new(whole, name)),
        CsvKind::JsonLines => Box::new(jsonl::JsonlReader::new(whole, name)),
        CsvKind::PipeDump => Box::new(dump::DumpReader::new(whole, name)),
        CsvKind::Unknown => {
            return Err(CelError::new(
                &name,
                None,
                Problem::NotCel(
                    "the first line is neither a CEL header (eventtype, eventtime, ...), a cel_custom row, \
                     nor a JSON object"
                        .into(),
                ),
            ))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_every_kind() {
        let header = "eventtype,eventtime,userdeftype,cid_name,cid_num,cid_ani,cid_rdnis,cid_dnid,exten,context,\
                      channame,appname,appdata,amaflags,accountcode,peeraccount,uniqueid,linkedid,userfield,peer,extra,tenantid";
        assert_eq!(detect(header), CsvKind::CustomWithHeader);
        assert_eq!(detect(&format!("\u{feff}{header}\r\n")), CsvKind::CustomWithHeader);
        let row = r#""CHAN_START","1795874894.647362","","PSTN Caller","0612345678","","","","5551000","from-extern","PJSIP/pstn-trunk-00000008","","","3","","","1795874894.8","1795874894.8","","","","""#;
        assert_eq!(detect(row), CsvKind::CustomNoHeader);
        assert_eq!(
            detect("id|eventtype|eventtime|userdeftype|cid_name|uniqueid|linkedid|extra"),
            CsvKind::PipeDump
        );
        assert_eq!(detect(r#"{"eventtype":"CHAN_START"}"#), CsvKind::JsonLines);
        assert_eq!(detect("clid,src,dst,dcontext,channel"), CsvKind::Unknown);
        assert_eq!(detect(""), CsvKind::Unknown);
        assert_eq!(detect("\"unterminated"), CsvKind::Unknown);
        assert_eq!(detect("a|b|c"), CsvKind::Unknown);
    }

    #[test]
    fn column_aliases() {
        let layout = Layout::from_names(
            "eventtype, eventtime, cidname, cidnum, cidani, cidrdnis, ciddnid, context, exten, channame, appname, \
             appdata, amaflags, accountcode, uniqueid, userfield, peer, userdeftype, eventextra"
                .split(','),
        );
        assert!(layout.is_cel());
        assert_eq!(layout.missing(), vec!["linkedid"]);
        assert_eq!(layout.fields().count(), 19);
    }

    proptest::proptest! {
        /// No input makes a reader or the time and extra parsers panic.
        #[test]
        fn nothing_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400), text in ".{0,60}") {
            let _ = EventTime::parse(&text);
            let _ = crate::cel::Extra::parse(&text).pairs();
            let _ = detect(&text);
            let _ = custom_csv::CustomCsvReader::new(&bytes[..], "p").count();
            let _ = dump::DumpReader::new(&bytes[..], "p").count();
            let _ = jsonl::JsonlReader::new(&bytes[..], "p").count();
            let mut dump = b"id|eventtype|eventtime|extra\n".to_vec();
            dump.extend_from_slice(&bytes);
            let _ = dump::DumpReader::new(&dump[..], "p").count();
            let mut csv = b"eventtype,eventtime,extra\n".to_vec();
            csv.extend_from_slice(&bytes);
            let _ = custom_csv::CustomCsvReader::new(&csv[..], "p").count();
        }
    }
}
