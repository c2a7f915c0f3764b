//! Asterisk's voicemail spool, read and changed in place (accentd runs on the PBX box):
//! `<spool>/<context>/<number>/<Folder>/msgNNNN.{txt,wav,WAV,gsm…}` per message, the
//! `.txt` holding its metadata (`[message]` with `callerid=`, `origtime=`, `duration=`,
//! `msg_id=`, as scenario 12 recorded), and `<spool>/<context>/<number>/{unavail,busy,greet}.wav`
//! for the greetings. Blocking: callers run it off the async runtime.
//!
//! Changes follow app_voicemail's own rules: a folder's messages are numbered from 0 without
//! gaps (what it renumbers to after a delete), and the folder is locked with app_voicemail's
//! lock file (`.lock`, made with an exclusive create as Asterisk's `link()` does) while
//! messages are renamed.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{json, Value};

/// One of the mailbox folders clients see, with upstream's ids and types.
#[derive(Debug, PartialEq, Eq)]
pub struct Folder {
    pub id: u32,
    /// The directory name in the mailbox.
    pub dir: &'static str,
    /// `new`, `old`, `urgent` or `other`.
    pub kind: &'static str,
    /// Messages there are unread: listening to one moves it to `Old`.
    pub unread: bool,
}

pub static FOLDERS: [Folder; 6] = [
    Folder {
        id: 1,
        dir: "INBOX",
        kind: "new",
        unread: true,
    },
    Folder {
        id: 2,
        dir: "Old",
        kind: "old",
        unread: false,
    },
    Folder {
        id: 3,
        dir: "Urgent",
        kind: "urgent",
        unread: true,
    },
    Folder {
        id: 4,
        dir: "Work",
        kind: "other",
        unread: false,
    },
    Folder {
        id: 5,
        dir: "Family",
        kind: "other",
        unread: false,
    },
    Folder {
        id: 6,
        dir: "Friends",
        kind: "other",
        unread: false,
    },
];

impl Folder {
    pub fn by_id(id: u32) -> Option<&'static Folder> {
        FOLDERS.iter().find(|f| f.id == id)
    }

    pub fn old() -> &'static Folder {
        &FOLDERS[1]
    }

    /// `{id, name, type}` (name: the directory in lower case, as upstream shows it).
    pub fn to_json(&self) -> Value {
        json!({ "id": self.id, "name": self.dir.to_ascii_lowercase(), "type": self.kind })
    }
}

/// A message's metadata, as its `.txt` says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MessageInfo {
    pub id: String,
    pub caller_id_name: Option<String>,
    pub caller_id_num: Option<String>,
    pub duration: u64,
    pub timestamp: i64,
}

/// A message found in a folder: its metadata and where its files are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub info: MessageInfo,
    pub folder: &'static Folder,
    /// `msgNNNN`: the files' common name in the folder.
    pub stem: String,
}

impl Message {
    /// The message object: metadata and `folder`.
    pub fn to_json(&self) -> Value {
        let mut v = serde_json::to_value(&self.info).unwrap_or(Value::Null);
        v["folder"] = self.folder.to_json();
        v
    }
}

#[derive(Debug, thiserror::Error)]
pub enum InfoError {
    #[error("no `{0}=` line")]
    Missing(&'static str),
    #[error("`{0}=` is not a number")]
    NotANumber(&'static str),
}

/// Parses a message's `.txt` (app_voicemail's `[message]` section). `callerid`, `msg_id`,
/// `origtime` and `duration` are required, as upstream requires them.
pub fn parse_info(text: &str) -> Result<MessageInfo, InfoError> {
    let mut callerid = None;
    let mut msg_id = None;
    let mut origtime = None;
    let mut duration = None;
    for line in text.lines() {
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        let v = v.trim();
        match k.trim() {
            "callerid" => callerid = Some(v.to_owned()),
            "msg_id" => msg_id = Some(v.to_owned()),
            "origtime" => origtime = Some(v.parse::<i64>().map_err(|_| InfoError::NotANumber("origtime"))?),
            "duration" => duration = Some(v.parse::<u64>().map_err(|_| InfoError::NotANumber("duration"))?),
            _ => {}
        }
    }
    let (caller_id_name, caller_id_num) = split_caller_id(&callerid.ok_or(InfoError::Missing("callerid"))?);
    Ok(MessageInfo {
        id: msg_id.filter(|s| !s.is_empty()).ok_or(InfoError::Missing("msg_id"))?,
        caller_id_name,
        caller_id_num,
        duration: duration.ok_or(InfoError::Missing("duration"))?,
        timestamp: origtime.ok_or(InfoError::Missing("origtime"))?,
    })
}

/// `"Bob" <1002>` → (Bob, 1002); `Unknown` → nothing; anything else is a bare number.
fn split_caller_id(v: &str) -> (Option<String>, Option<String>) {
    if v.is_empty() || v == "Unknown" {
        return (None, None);
    }
    if let Some(open) = v.rfind('<') {
        if let Some(num) = v[open + 1..].strip_suffix('>') {
            let name = v[..open].trim().trim_matches('"').trim();
            let name = (!name.is_empty()).then(|| name.to_owned());
            return (name, Some(num.trim().to_owned()));
        }
    }
    (None, Some(v.to_owned()))
}

/// The greetings a mailbox may have, by their API names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Greeting {
    Unavailable,
    Busy,
    Name,
}

impl Greeting {
    pub fn parse(s: &str) -> Option<Greeting> {
        Some(match s {
            "unavailable" => Greeting::Unavailable,
            "busy" => Greeting::Busy,
            "name" => Greeting::Name,
            _ => return None,
        })
    }

    /// app_voicemail's file name (without the format extension).
    fn stem(self) -> &'static str {
        match self {
            Greeting::Unavailable => "unavail",
            Greeting::Busy => "busy",
            Greeting::Name => "greet",
        }
    }
}

/// True for a RIFF/WAVE file: the only format greetings are accepted in.
pub fn is_wav(data: &[u8]) -> bool {
    data.len() >= 12 && &data[..4] == b"RIFF" && &data[8..12] == b"WAVE"
}

/// One mailbox's directory.
#[derive(Debug, Clone)]
pub struct Mailbox {
    pub dir: PathBuf,
}

impl Mailbox {
    /// `<spool>/<context>/<number>`; `None` for a context or number that is not a plain
    /// name (never a path out of the spool).
    pub fn new(spool: &Path, context: &str, number: &str) -> Option<Mailbox> {
        let plain = |s: &str| !s.is_empty() && s != "." && s != ".." && !s.contains(['/', '\\', '\0']);
        (plain(context) && plain(number)).then(|| Mailbox {
            dir: spool.join(context).join(number),
        })
    }

    fn folder_dir(&self, f: &Folder) -> PathBuf {
        self.dir.join(f.dir)
    }

    /// The messages of one folder, in number order. A missing folder has none (Asterisk
    /// creates folders when a message first lands); an unreadable `.txt` is skipped with a
    /// warning rather than hiding the rest of the mailbox.
    pub fn folder_messages(&self, f: &'static Folder) -> io::Result<Vec<Message>> {
        let dir = self.folder_dir(f);
        let mut stems: Vec<(u32, String)> = match fs::read_dir(&dir) {
            Ok(entries) => entries
                .filter_map(Result::ok)
                .filter_map(|e| {
                    let name = e.file_name().into_string().ok()?;
                    let stem = name.strip_suffix(".txt")?.to_owned();
                    Some((msg_number(&stem)?, stem))
                })
                .collect(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        stems.sort();
        let mut out = Vec::with_capacity(stems.len());
        for (_, stem) in stems {
            let path = dir.join(format!("{stem}.txt"));
            match fs::read(&path) {
                Ok(bytes) => match parse_info(&String::from_utf8_lossy(&bytes)) {
                    Ok(info) => out.push(Message { info, folder: f, stem }),
                    Err(e) => tracing::warn!(path = %path.display(), error = %e, "unreadable voicemail message"),
                },
                // Moved or deleted since the listing.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// Every message of every folder, folder by folder.
    pub fn messages(&self) -> io::Result<Vec<Message>> {
        let mut all = Vec::new();
        for f in &FOLDERS {
            all.extend(self.folder_messages(f)?);
        }
        Ok(all)
    }

    pub fn find(&self, id: &str) -> io::Result<Option<Message>> {
        Ok(self.messages()?.into_iter().find(|m| m.info.id == id))
    }

    /// The message's audio (`.wav`); `None` when it has no WAV file.
    pub fn recording(&self, m: &Message) -> io::Result<Option<Vec<u8>>> {
        read_optional(&self.folder_dir(m.folder).join(format!("{}.wav", m.stem)))
    }

    /// Moves a message to the end of `dest` (a no-op into its own folder), then closes the
    /// gap it left.
    pub fn move_message(&self, m: &Message, dest: &'static Folder) -> io::Result<()> {
        if m.folder == dest {
            return Ok(());
        }
        let src_dir = self.folder_dir(m.folder);
        let dest_dir = self.folder_dir(dest);
        fs::create_dir_all(&dest_dir)?;
        let _src_lock = FolderLock::take(&src_dir)?;
        let _dest_lock = FolderLock::take(&dest_dir)?;
        let next = next_number(&dest_dir)?;
        rename_all(&src_dir, &m.stem, &dest_dir, &format!("msg{next:04}"))?;
        resequence(&src_dir)
    }

    /// Deletes a message's files, then closes the gap.
    pub fn delete_message(&self, m: &Message) -> io::Result<()> {
        let dir = self.folder_dir(m.folder);
        let _lock = FolderLock::take(&dir)?;
        for path in files_of(&dir, &m.stem)? {
            fs::remove_file(path)?;
        }
        resequence(&dir)
    }

    /// The greeting's WAV, if recorded.
    pub fn greeting(&self, g: Greeting) -> io::Result<Option<Vec<u8>>> {
        read_optional(&self.dir.join(format!("{}.wav", g.stem())))
    }

    /// Every file of the greeting (any format Asterisk recorded it in).
    fn greeting_files(&self, g: Greeting) -> io::Result<Vec<PathBuf>> {
        if !self.dir.exists() {
            return Ok(Vec::new());
        }
        files_of(&self.dir, g.stem())
    }

    pub fn has_greeting(&self, g: Greeting) -> io::Result<bool> {
        Ok(!self.greeting_files(g)?.is_empty())
    }

    /// Writes the greeting as WAV, replacing every recorded format of it (Asterisk would
    /// otherwise keep playing an older `.gsm`). Written to a temporary file then renamed, so
    /// a caller never hears half a greeting.
    pub fn put_greeting(&self, g: Greeting, data: &[u8]) -> io::Result<()> {
        fs::create_dir_all(&self.dir)?;
        let tmp = self.dir.join(format!(".{}.accentd-tmp", g.stem()));
        fs::write(&tmp, data)?;
        for old in self.greeting_files(g)? {
            fs::remove_file(old)?;
        }
        fs::rename(&tmp, self.dir.join(format!("{}.wav", g.stem())))
    }

    /// Removes every format of the greeting; false when there was none.
    pub fn delete_greeting(&self, g: Greeting) -> io::Result<bool> {
        let files = self.greeting_files(g)?;
        for f in &files {
            fs::remove_file(f)?;
        }
        Ok(!files.is_empty())
    }
}

fn read_optional(path: &Path) -> io::Result<Option<Vec<u8>>> {
    match fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// `msg0012` → 12.
fn msg_number(stem: &str) -> Option<u32> {
    let digits = stem.strip_prefix("msg")?;
    (digits.len() >= 4 && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| digits.parse().ok())
        .flatten()
}

/// The files named `<stem>.<ext>` in `dir`.
fn files_of(dir: &Path, stem: &str) -> io::Result<Vec<PathBuf>> {
    let prefix = format!("{stem}.");
    let mut out = Vec::new();
    for e in fs::read_dir(dir)? {
        let e = e?;
        if e.file_name().to_str().is_some_and(|n| n.starts_with(&prefix)) {
            out.push(e.path());
        }
    }
    Ok(out)
}

fn rename_all(src_dir: &Path, stem: &str, dest_dir: &Path, new_stem: &str) -> io::Result<()> {
    for path in files_of(src_dir, stem)? {
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let ext = &name[stem.len()..];
        fs::rename(&path, dest_dir.join(format!("{new_stem}{ext}")))?;
    }
    Ok(())
}

/// The number after the highest message of a folder.
fn next_number(dir: &Path) -> io::Result<u32> {
    let mut next = 0;
    for e in fs::read_dir(dir)? {
        let name = e?.file_name();
        if let Some(n) = name
            .to_str()
            .and_then(|n| n.split_once('.'))
            .and_then(|(s, _)| msg_number(s))
        {
            next = next.max(n + 1);
        }
    }
    Ok(next)
}

/// Renumbers a folder's messages 0, 1, 2… in their order, as app_voicemail does.
fn resequence(dir: &Path) -> io::Result<()> {
    let mut numbers: Vec<u32> = Vec::new();
    for e in fs::read_dir(dir)? {
        let name = e?.file_name();
        if let Some(n) = name.to_str().and_then(|n| n.strip_suffix(".txt")).and_then(msg_number) {
            numbers.push(n);
        }
    }
    numbers.sort_unstable();
    for (want, have) in numbers.into_iter().enumerate() {
        let want = want as u32;
        if want != have {
            rename_all(dir, &format!("msg{have:04}"), dir, &format!("msg{want:04}"))?;
        }
    }
    Ok(())
}

/// app_voicemail's folder lock: `<dir>/.lock`, created exclusively; waited for up to a
/// second, taken over when older than that (a crashed holder's).
struct FolderLock {
    path: PathBuf,
}

impl FolderLock {
    fn take(dir: &Path) -> io::Result<FolderLock> {
        let path = dir.join(".lock");
        let deadline = Instant::now() + Duration::from_secs(1);
        loop {
            match fs::OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(_) => return Ok(FolderLock { path }),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    if Instant::now() >= deadline {
                        tracing::warn!(path = %path.display(), "taking over a stale voicemail lock");
                        let _ = fs::remove_file(&path);
                    } else {
                        std::thread::sleep(Duration::from_millis(10));
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }
}

impl Drop for FolderLock {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RECORDED: &str = ";\n; Message Information file\n;\n[message]\norigmailbox=1000\ncontext=from-internal\nexten=1000\nrdnis=unknown\npriority=9\ncallerchan=Local/1002@caller-0000001f;1\ncallerid=\"Bob\" <1002>\norigdate=Sat Nov 28 01:02:56 PM UTC 2026\norigtime=1795870976\ncategory=\nmsg_id=1795870976-00000000\nflag=\nduration=10\n";

    #[test]
    fn reads_what_app_voicemail_writes() {
        let info = parse_info(RECORDED).expect("parse");
        assert_eq!(
            info,
            MessageInfo {
                id: "1795870976-00000000".into(),
                caller_id_name: Some("Bob".into()),
                caller_id_num: Some("1002".into()),
                duration: 10,
                timestamp: 1795870976,
            }
        );
    }

    #[test]
    fn caller_ids_and_bad_files() {
        assert_eq!(split_caller_id("Unknown"), (None, None));
        assert_eq!(split_caller_id("1002"), (None, Some("1002".into())));
        assert_eq!(split_caller_id("<1002>"), (None, Some("1002".into())));
        assert_eq!(split_caller_id("Bob <1002>"), (Some("Bob".into()), Some("1002".into())));
        assert!(matches!(
            parse_info("callerid=x\norigtime=1\nduration=1\n"),
            Err(InfoError::Missing("msg_id"))
        ));
        assert!(matches!(
            parse_info("callerid=x\nmsg_id=a\norigtime=soon\nduration=1\n"),
            Err(InfoError::NotANumber("origtime"))
        ));
        assert!(parse_info("").is_err());
    }

    #[test]
    fn mailbox_paths_stay_in_the_spool() {
        let spool = Path::new("/spool");
        assert!(Mailbox::new(spool, "default", "1000").is_some());
        for (c, n) in [("..", "1000"), ("default", "../x"), ("a/b", "1"), ("", "1"), ("d", "")] {
            assert!(Mailbox::new(spool, c, n).is_none(), "{c} {n}");
        }
    }

    fn message(dir: &Path, folder: &str, n: u32, id: &str) {
        let d = dir.join(folder);
        fs::create_dir_all(&d).expect("mkdir");
        let txt = RECORDED.replace("1795870976-00000000", id);
        fs::write(d.join(format!("msg{n:04}.txt")), txt).expect("txt");
        fs::write(d.join(format!("msg{n:04}.wav")), format!("wav {id}")).expect("wav");
        fs::write(d.join(format!("msg{n:04}.WAV")), "gsm").expect("WAV");
    }

    #[test]
    fn moves_and_deletes_keep_folders_numbered_without_gaps() {
        let tmp = tempfile::tempdir().expect("tmp");
        let mb = Mailbox::new(tmp.path(), "default", "1000").expect("mailbox");
        message(&mb.dir, "INBOX", 0, "a");
        message(&mb.dir, "INBOX", 1, "b");
        message(&mb.dir, "INBOX", 2, "c");
        message(&mb.dir, "Old", 0, "z");
        let a = mb.find("a").expect("find").expect("a");
        mb.move_message(&a, Folder::old()).expect("move");
        let ids = |f: &'static Folder| -> Vec<(String, String)> {
            mb.folder_messages(f)
                .expect("list")
                .into_iter()
                .map(|m| (m.stem, m.info.id))
                .collect()
        };
        assert_eq!(
            ids(&FOLDERS[0]),
            [("msg0000".into(), "b".into()), ("msg0001".into(), "c".into())]
        );
        assert_eq!(
            ids(&FOLDERS[1]),
            [("msg0000".into(), "z".into()), ("msg0001".into(), "a".into())]
        );
        let a = mb.find("a").expect("find").expect("a");
        assert_eq!(
            mb.recording(&a).expect("read"),
            Some(b"wav a".to_vec()),
            "the audio moved along"
        );
        assert!(mb.dir.join("Old/msg0001.WAV").exists(), "every format moves");
        let b = mb.find("b").expect("find").expect("b");
        mb.delete_message(&b).expect("delete");
        assert_eq!(ids(&FOLDERS[0]), [("msg0000".into(), "c".into())]);
        assert!(!mb.dir.join("INBOX/msg0001.wav").exists());
        assert!(!mb.dir.join("INBOX/.lock").exists(), "locks released");
        assert_eq!(mb.folder_messages(&FOLDERS[4]).expect("missing folder"), []);
    }

    #[test]
    fn greetings_replace_every_format() {
        let tmp = tempfile::tempdir().expect("tmp");
        let mb = Mailbox::new(tmp.path(), "default", "1000").expect("mailbox");
        assert!(!mb.has_greeting(Greeting::Busy).expect("has"));
        fs::create_dir_all(&mb.dir).expect("mkdir");
        fs::write(mb.dir.join("busy.gsm"), "old").expect("gsm");
        assert!(mb.has_greeting(Greeting::Busy).expect("has"));
        mb.put_greeting(Greeting::Busy, b"RIFF....WAVE").expect("put");
        assert!(!mb.dir.join("busy.gsm").exists());
        assert_eq!(
            mb.greeting(Greeting::Busy).expect("get"),
            Some(b"RIFF....WAVE".to_vec())
        );
        assert!(mb.delete_greeting(Greeting::Busy).expect("delete"));
        assert!(!mb.delete_greeting(Greeting::Busy).expect("delete"));
        assert!(is_wav(b"RIFF\x24\x00\x00\x00WAVEfmt "));
        assert!(!is_wav(b"%PDF-1.4 not audio"));
    }
}
