//! One row of the users CSV (upstream's import format): the cells split into the
//! resources they create. Typing happens here (numbers, 0/1 booleans); the
//! resources' own validation runs when the row is written, so a rule lives in
//! one place. Empty cells are "not given".

use std::collections::BTreeMap;

use serde_json::{Map, Value};

/// Cells of the user itself, with their type.
const USER_FIELDS: &[(&str, Kind)] = &[
    ("uuid", Kind::Text),
    ("firstname", Kind::Text),
    ("lastname", Kind::Text),
    ("email", Kind::Text),
    ("mobile_phone_number", Kind::Text),
    ("outgoing_caller_id", Kind::Text),
    ("language", Kind::Text),
    ("timezone", Kind::Text),
    ("userfield", Kind::Text),
    ("description", Kind::Text),
    ("call_permission_password", Kind::Text),
    ("ring_seconds", Kind::Int),
    ("simultaneous_calls", Kind::Int),
    ("subscription_type", Kind::Int),
    ("enabled", Kind::Bool),
    ("supervision_enabled", Kind::Bool),
    ("call_transfer_enabled", Kind::Bool),
    ("dtmf_hangup_enabled", Kind::Bool),
    ("call_record_enabled", Kind::Bool),
    ("call_record_outgoing_external_enabled", Kind::Bool),
    ("call_record_incoming_external_enabled", Kind::Bool),
    ("call_record_outgoing_internal_enabled", Kind::Bool),
    ("call_record_incoming_internal_enabled", Kind::Bool),
    ("online_call_record_enabled", Kind::Bool),
];

/// `voicemail_<field>` cells.
const VOICEMAIL_FIELDS: &[(&str, Kind)] = &[
    ("name", Kind::Text),
    ("number", Kind::Text),
    ("context", Kind::Text),
    ("password", Kind::Text),
    ("email", Kind::Text),
    ("attach_audio", Kind::Bool),
    ("delete_messages", Kind::Bool),
    ("ask_password", Kind::Bool),
];

/// The other cells this format knows.
const OTHER_COLUMNS: &[&str] = &[
    "username",
    "password",
    "line_protocol",
    "context",
    "exten",
    "sip_username",
    "sip_secret",
    "sip_password",
    "incall_exten",
    "incall_context",
    "incall_ring_seconds",
];

/// Columns of older exports that no longer mean anything (CTI profiles and entities are
/// gone); accepted and ignored so an old file still imports.
const OBSOLETE_COLUMNS: &[&str] = &["entity_id", "cti_profile_name", "cti_profile_enabled"];

/// Every column, in the order `GET /users/export` writes them.
pub fn export_columns() -> Vec<String> {
    let mut cols: Vec<String> = USER_FIELDS.iter().map(|(n, _)| n.to_string()).collect();
    cols.extend(
        OTHER_COLUMNS
            .iter()
            .filter(|c| **c != "sip_password")
            .map(|c| c.to_string()),
    );
    cols.extend(VOICEMAIL_FIELDS.iter().map(|(n, _)| format!("voicemail_{n}")));
    cols
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Text,
    Int,
    Bool,
}

/// What is wrong with a file or a row; `column` names the CSV column.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RowError {
    #[error("the body is not a CSV file: {0}")]
    NotCsv(String),
    #[error("unknown column {0:?}")]
    UnknownColumn(String),
    #[error("duplicated column {0:?}")]
    DuplicatedColumn(String),
    #[error("field {column:?}: {message}")]
    Field { column: String, message: String },
}

impl RowError {
    fn field(column: &str, message: impl Into<String>) -> RowError {
        RowError::Field {
            column: column.to_owned(),
            message: message.into(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineProtocol {
    Sip,
    Sccp,
    Webrtc,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthPart {
    pub username: String,
    pub password: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinePart {
    pub protocol: LineProtocol,
    pub context: String,
    /// SIP authentication username and secret (generated when absent).
    pub sip_username: Option<String>,
    pub sip_secret: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtensionPart {
    pub exten: String,
    pub context: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncallPart {
    pub exten: String,
    pub context: String,
    pub ring_seconds: Option<i64>,
}

/// One data row. `number` is its 1-based position among the data rows, as upstream's
/// `row_number`.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportRow {
    pub number: usize,
    /// The row as given (column -> cell), for error reports.
    pub raw: Map<String, Value>,
    pub user: Map<String, Value>,
    pub auth: Option<AuthPart>,
    pub line: Option<LinePart>,
    pub extension: Option<ExtensionPart>,
    pub voicemail: Option<Map<String, Value>>,
    pub incall: Option<IncallPart>,
}

fn typed(column: &str, kind: Kind, cell: &str) -> Result<Value, RowError> {
    match kind {
        Kind::Text => Ok(Value::String(cell.to_owned())),
        Kind::Int => cell
            .trim()
            .parse::<i64>()
            .map(Value::from)
            .map_err(|_| RowError::field(column, "Not a valid integer.")),
        Kind::Bool => match cell.trim() {
            "1" | "true" | "True" | "TRUE" => Ok(Value::Bool(true)),
            "0" | "false" | "False" | "FALSE" => Ok(Value::Bool(false)),
            _ => Err(RowError::field(column, "Not a valid boolean (0 or 1).")),
        },
    }
}

/// Checks the header: every column known, none twice.
fn check_header(header: &[String]) -> Result<(), RowError> {
    let mut seen = std::collections::BTreeSet::new();
    for col in header {
        let known = USER_FIELDS.iter().any(|(n, _)| n == col)
            || OTHER_COLUMNS.contains(&col.as_str())
            || OBSOLETE_COLUMNS.contains(&col.as_str())
            || col
                .strip_prefix("voicemail_")
                .is_some_and(|f| VOICEMAIL_FIELDS.iter().any(|(n, _)| *n == f));
        if !known {
            return Err(RowError::UnknownColumn(col.clone()));
        }
        if !seen.insert(col.as_str()) {
            return Err(RowError::DuplicatedColumn(col.clone()));
        }
    }
    Ok(())
}

/// A rejected row: its number and its cells as given.
pub type BadRow = (usize, Map<String, Value>);

/// Reads the whole body: the header, then every row. The first bad row stops the read
/// (the import is all or nothing), naming the row.
pub fn parse(body: &[u8]) -> Result<Vec<ImportRow>, (Option<BadRow>, RowError)> {
    let text = std::str::from_utf8(body).map_err(|_| (None, RowError::NotCsv("not UTF-8 text".into())))?;
    // A UTF-8 byte order mark (spreadsheets write one) is not part of the first column name.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .from_reader(text.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .map_err(|e| (None, RowError::NotCsv(e.to_string())))?
        .iter()
        .map(|h| h.trim().to_owned())
        .collect();
    if header.iter().all(String::is_empty) {
        return Err((None, RowError::NotCsv("no header line".into())));
    }
    check_header(&header).map_err(|e| (None, e))?;
    let mut rows = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let number = i + 1;
        let record = record.map_err(|e| (None, RowError::NotCsv(format!("row {number}: {e}"))))?;
        let cells: BTreeMap<&str, &str> = header
            .iter()
            .map(String::as_str)
            .zip(record.iter())
            .filter(|(_, v)| !v.is_empty())
            .collect();
        let raw: Map<String, Value> = header
            .iter()
            .zip(record.iter())
            .map(|(k, v)| (k.clone(), Value::String(v.to_owned())))
            .collect();
        let row = build(number, &cells, raw.clone()).map_err(|e| (Some((number, raw)), e))?;
        rows.push(row);
    }
    Ok(rows)
}

fn build(number: usize, cells: &BTreeMap<&str, &str>, raw: Map<String, Value>) -> Result<ImportRow, RowError> {
    let get = |k: &str| cells.get(k).map(|v| v.to_string());
    let mut user = Map::new();
    for (name, kind) in USER_FIELDS {
        if let Some(cell) = cells.get(name) {
            user.insert((*name).to_owned(), typed(name, *kind, cell)?);
        }
    }
    if !user.contains_key("firstname") {
        return Err(RowError::field("firstname", "Missing data for required field."));
    }

    let auth = match (get("username"), get("password")) {
        (Some(username), password) => Some(AuthPart { username, password }),
        (None, Some(_)) => return Err(RowError::field("username", "A password needs a username.")),
        (None, None) => None,
    };

    let context = get("context");
    let line = match get("line_protocol") {
        None => {
            for col in ["sip_username", "sip_secret", "sip_password"] {
                if cells.contains_key(col) {
                    return Err(RowError::field(
                        "line_protocol",
                        format!("{col} needs a line_protocol."),
                    ));
                }
            }
            None
        }
        Some(p) => {
            let protocol = match p.trim() {
                "sip" => LineProtocol::Sip,
                "sccp" => LineProtocol::Sccp,
                "webrtc" => LineProtocol::Webrtc,
                _ => return Err(RowError::field("line_protocol", "Must be one of: sip, sccp, webrtc.")),
            };
            let context = context
                .clone()
                .ok_or_else(|| RowError::field("context", "A line needs a context."))?;
            if protocol == LineProtocol::Sccp
                && (cells.contains_key("sip_username") || cells.contains_key("sip_secret"))
            {
                return Err(RowError::field("sip_username", "SIP credentials on an SCCP line."));
            }
            Some(LinePart {
                protocol,
                context,
                sip_username: get("sip_username"),
                sip_secret: get("sip_secret").or_else(|| get("sip_password")),
            })
        }
    };

    let extension = match get("exten") {
        None => None,
        Some(exten) => {
            if line.is_none() {
                return Err(RowError::field("exten", "An extension needs a line (line_protocol)."));
            }
            let context = context.ok_or_else(|| RowError::field("context", "An extension needs a context."))?;
            Some(ExtensionPart { exten, context })
        }
    };

    let mut vm = Map::new();
    for (name, kind) in VOICEMAIL_FIELDS {
        let col = format!("voicemail_{name}");
        if let Some(cell) = cells.get(col.as_str()) {
            vm.insert((*name).to_owned(), typed(&col, *kind, cell)?);
        }
    }
    let voicemail = if vm.is_empty() {
        None
    } else {
        for required in ["name", "number", "context"] {
            if !vm.contains_key(required) {
                return Err(RowError::field(
                    &format!("voicemail_{required}"),
                    "Missing data for required field.",
                ));
            }
        }
        Some(vm)
    };

    let incall = match (get("incall_exten"), get("incall_context")) {
        (None, None) => {
            if cells.contains_key("incall_ring_seconds") {
                return Err(RowError::field(
                    "incall_exten",
                    "incall_ring_seconds needs an incall_exten.",
                ));
            }
            None
        }
        (Some(exten), Some(context)) => {
            let ring_seconds = match cells.get("incall_ring_seconds") {
                Some(v) => Some(typed("incall_ring_seconds", Kind::Int, v)?.as_i64().unwrap_or_default()),
                None => None,
            };
            Some(IncallPart {
                exten,
                context,
                ring_seconds,
            })
        }
        (Some(_), None) => return Err(RowError::field("incall_context", "Missing data for required field.")),
        (None, Some(_)) => return Err(RowError::field("incall_exten", "Missing data for required field.")),
    };

    Ok(ImportRow {
        number,
        raw,
        user,
        auth,
        line,
        extension,
        voicemail,
        incall,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "firstname,lastname,username,password,line_protocol,context,exten,sip_username,sip_secret,\
voicemail_name,voicemail_number,voicemail_context,voicemail_attach_audio,incall_exten,incall_context,incall_ring_seconds,\
ring_seconds,supervision_enabled,entity_id";

    fn one(row: &str) -> Result<ImportRow, RowError> {
        parse(format!("{HEADER}\n{row}\n").as_bytes())
            .map(|mut rows| rows.remove(0))
            .map_err(|(_, e)| e)
    }

    #[test]
    fn a_full_row_is_split_into_its_resources() {
        let row = one(
            "Ann,Ô Brïen,ann,s3cret-Pw,sip,default,1001,annsip,abc,Ann VM,1001,default,1,0123456789,from-extern,12,30,1,7",
        )
        .expect("row");
        assert_eq!(row.number, 1);
        assert_eq!(row.user["firstname"], "Ann");
        assert_eq!(row.user["lastname"], "Ô Brïen");
        assert_eq!(row.user["ring_seconds"], 30);
        assert_eq!(row.user["supervision_enabled"], true);
        assert!(!row.user.contains_key("entity_id"), "obsolete columns are ignored");
        assert_eq!(
            row.auth,
            Some(AuthPart {
                username: "ann".into(),
                password: Some("s3cret-Pw".into())
            })
        );
        let line = row.line.expect("line");
        assert_eq!(line.protocol, LineProtocol::Sip);
        assert_eq!(line.context, "default");
        assert_eq!(line.sip_username.as_deref(), Some("annsip"));
        assert_eq!(
            row.extension,
            Some(ExtensionPart {
                exten: "1001".into(),
                context: "default".into()
            })
        );
        let vm = row.voicemail.expect("voicemail");
        assert_eq!(vm["attach_audio"], true);
        assert_eq!(vm["number"], "1001");
        assert_eq!(
            row.incall,
            Some(IncallPart {
                exten: "0123456789".into(),
                context: "from-extern".into(),
                ring_seconds: Some(12)
            })
        );
        assert_eq!(row.raw["entity_id"], "7");
    }

    #[test]
    fn a_minimal_row_is_just_a_user() {
        let row = one("Bob,,,,,,,,,,,,,,,,,,").expect("row");
        assert_eq!(row.user.len(), 1);
        assert!(row.auth.is_none() && row.line.is_none() && row.voicemail.is_none() && row.incall.is_none());
    }

    #[test]
    fn bad_rows_name_their_column() {
        for (row, column) in [
            (",,,,,,,,,,,,,,,,,,", "firstname"),
            ("A,,,pw,,,,,,,,,,,,,,,", "username"),
            ("A,,,,sip,,,,,,,,,,,,,,", "context"),
            ("A,,,,telnet,default,,,,,,,,,,,,,", "line_protocol"),
            ("A,,,,,default,1001,,,,,,,,,,,,", "exten"),
            ("A,,,,,,,u,,,,,,,,,,,", "line_protocol"),
            ("A,,,,sccp,default,,u,,,,,,,,,,,", "sip_username"),
            ("A,,,,,,,,,VM,,,,,,,,,", "voicemail_number"),
            ("A,,,,,,,,,VM,1001,default,yes,,,,,,", "voicemail_attach_audio"),
            ("A,,,,,,,,,,,,,0123,,,,,", "incall_context"),
            ("A,,,,,,,,,,,,,,ctx,,,,", "incall_exten"),
            ("A,,,,,,,,,,,,,,,12,,,", "incall_exten"),
            ("A,,,,,,,,,,,,,0123,ctx,soon,,,", "incall_ring_seconds"),
            ("A,,,,,,,,,,,,,,,,thirty,,", "ring_seconds"),
            ("A,,,,,,,,,,,,,,,,,2,", "supervision_enabled"),
        ] {
            match one(row) {
                Err(RowError::Field { column: c, .. }) => assert_eq!(c, column, "{row}"),
                other => panic!("{row}: {other:?}"),
            }
        }
    }

    #[test]
    fn bad_files_are_refused_whole() {
        let bad = |body: &[u8]| parse(body).expect_err("refused").1;
        assert!(matches!(bad(b"\xff\xfe"), RowError::NotCsv(_)));
        assert!(matches!(bad(b""), RowError::NotCsv(_)));
        assert_eq!(
            bad(b"firstname,shoe_size\nA,42\n"),
            RowError::UnknownColumn("shoe_size".into())
        );
        assert_eq!(
            bad(b"firstname,firstname\nA,B\n"),
            RowError::DuplicatedColumn("firstname".into())
        );
        // A row with a missing cell is not silently shifted.
        assert!(matches!(bad(b"firstname,lastname\nA\n"), RowError::NotCsv(m) if m.contains("row 1")));
        // The error of a bad row carries its number and its cells.
        let (at, _) = parse(b"firstname,ring_seconds\nA,1\nB,x\n").expect_err("row 2");
        let (n, raw) = at.expect("row");
        assert_eq!(n, 2);
        assert_eq!(raw["firstname"], "B");
    }

    #[test]
    fn a_byte_order_mark_and_quoted_cells_are_read() {
        let rows =
            parse("\u{feff}firstname,outgoing_caller_id\n\"Ann\",\"\"\"Ann A\"\" <1001>\"\n".as_bytes()).expect("rows");
        assert_eq!(rows[0].user["outgoing_caller_id"], "\"Ann A\" <1001>");
    }

    #[test]
    fn export_columns_are_all_importable() {
        let header = export_columns();
        check_header(&header).expect("importable");
        assert!(header.contains(&"voicemail_number".to_string()));
        assert!(header.contains(&"incall_exten".to_string()));
    }
}
