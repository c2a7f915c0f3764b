//! SQL of the `cel` table (`sql/001_cel.sql`). Functions take a `&Connection` (a
//! `&Transaction` derefs to one) and run on the store's writer thread or a reader; see
//! [`crate::store`].
//!
//! Sets of ids go to SQLite as one JSON array (`json_each`), so a call with many channels needs
//! neither a statement per id nor a variable count limit.

use rusqlite::{params, Connection, Row};

use super::eventtime::EventTime;
use super::record::{Cel, EventType};

/// A row with its id in our table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCel {
    pub id: i64,
    pub cel: Cel,
}

const COLUMNS: &str = "id, eventtype, eventtime, userdeftype, cid_name, cid_num, cid_ani, cid_rdnis, cid_dnid, exten, \
    context, channame, appname, appdata, amaflags, accountcode, peeraccount, uniqueid, linkedid, userfield, peer, \
    extra, tenantid";

/// Inserts rows, skipping those already stored (same natural key); returns how many were new.
pub fn insert_batch(conn: &Connection, cels: &[Cel]) -> rusqlite::Result<usize> {
    let mut stmt = conn.prepare_cached(
        "INSERT OR IGNORE INTO cel (eventtype, eventtime, userdeftype, cid_name, cid_num, cid_ani, cid_rdnis, \
         cid_dnid, exten, context, channame, appname, appdata, amaflags, accountcode, peeraccount, uniqueid, \
         linkedid, userfield, peer, extra, tenantid) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22)",
    )?;
    let mut inserted = 0;
    for c in cels {
        inserted += stmt.execute(params![
            c.eventtype.as_str(),
            c.eventtime.micros(),
            c.userdeftype,
            c.cid_name,
            c.cid_num,
            c.cid_ani,
            c.cid_rdnis,
            c.cid_dnid,
            c.exten,
            c.context,
            c.channame,
            c.appname,
            c.appdata,
            c.amaflags,
            c.accountcode,
            c.peeraccount,
            c.uniqueid,
            c.linkedid,
            c.userfield,
            c.peer,
            c.extra,
            c.tenantid,
        ])?;
    }
    Ok(inserted)
}

fn from_row(row: &Row<'_>) -> rusqlite::Result<StoredCel> {
    let eventtype: String = row.get(1)?;
    let userdeftype: String = row.get(3)?;
    let mut cel = Cel::new(
        EventType::parse(&eventtype, &userdeftype),
        EventTime::from_micros(row.get(2)?),
    );
    cel.userdeftype = userdeftype;
    cel.cid_name = row.get(4)?;
    cel.cid_num = row.get(5)?;
    cel.cid_ani = row.get(6)?;
    cel.cid_rdnis = row.get(7)?;
    cel.cid_dnid = row.get(8)?;
    cel.exten = row.get(9)?;
    cel.context = row.get(10)?;
    cel.channame = row.get(11)?;
    cel.appname = row.get(12)?;
    cel.appdata = row.get(13)?;
    cel.amaflags = row.get(14)?;
    cel.accountcode = row.get(15)?;
    cel.peeraccount = row.get(16)?;
    cel.uniqueid = row.get(17)?;
    cel.linkedid = row.get(18)?;
    cel.userfield = row.get(19)?;
    cel.peer = row.get(20)?;
    cel.extra = row.get(21)?;
    cel.tenantid = row.get(22)?;
    Ok(StoredCel { id: row.get(0)?, cel })
}

fn json_array(items: &[&str]) -> String {
    serde_json::Value::from(items.to_vec()).to_string()
}

/// Every row of these calls, in time order (ties in insertion order).
pub fn by_linkedids(conn: &Connection, linkedids: &[&str]) -> rusqlite::Result<Vec<StoredCel>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM cel WHERE linkedid IN (SELECT value FROM json_each(?1)) ORDER BY eventtime, id"
    ))?;
    let rows = stmt.query_map([json_array(linkedids)], from_row)?;
    rows.collect()
}

/// The linkedids that rows of these channels carry (a transferred or picked-up channel ends up
/// in several calls: their groups merge), sorted.
pub fn linkedids_of_uniqueids(conn: &Connection, uniqueids: &[&str]) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare_cached(
        "SELECT DISTINCT linkedid FROM cel WHERE uniqueid IN (SELECT value FROM json_each(?1)) ORDER BY linkedid",
    )?;
    let rows = stmt.query_map([json_array(uniqueids)], |r| r.get(0))?;
    rows.collect()
}

/// Rows with `from <= eventtime < until`, in time order.
pub fn in_range(conn: &Connection, from: EventTime, until: EventTime) -> rusqlite::Result<Vec<StoredCel>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM cel WHERE eventtime >= ?1 AND eventtime < ?2 ORDER BY eventtime, id"
    ))?;
    let rows = stmt.query_map(params![from.micros(), until.micros()], from_row)?;
    rows.collect()
}

/// The linkedids with rows at or after `since`, oldest first (the batch generation of the last
/// N days).
pub fn linkedids_since(conn: &Connection, since: EventTime) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare_cached(
        "SELECT linkedid FROM cel WHERE eventtime >= ?1 AND linkedid != '' GROUP BY linkedid ORDER BY MIN(eventtime)",
    )?;
    let rows = stmt.query_map([since.micros()], |r| r.get::<_, String>(0))?;
    rows.collect()
}

/// The linkedids of the `n` most recent rows, oldest first (upstream's default batch: the last
/// 20,000 CELs).
pub fn linkedids_of_last(conn: &Connection, n: u32) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare_cached(
        "SELECT linkedid FROM (SELECT linkedid, eventtime FROM cel ORDER BY eventtime DESC, id DESC LIMIT ?1) \
         WHERE linkedid != '' GROUP BY linkedid ORDER BY MIN(eventtime)",
    )?;
    let rows = stmt.query_map([n], |r| r.get::<_, String>(0))?;
    rows.collect()
}

/// Deletes rows older than `cutoff`; returns how many.
pub fn delete_before(conn: &Connection, cutoff: EventTime) -> rusqlite::Result<usize> {
    conn.execute("DELETE FROM cel WHERE eventtime < ?1", [cutoff.micros()])
}

/// Deletes rows older than `days` days before `now` (retention).
pub fn delete_older_than_days(conn: &Connection, days: u32, now: EventTime) -> rusqlite::Result<usize> {
    let cutoff = now.micros().saturating_sub(i64::from(days) * 86_400 * 1_000_000);
    delete_before(conn, EventTime::from_micros(cutoff))
}

pub fn delete_all(conn: &Connection) -> rusqlite::Result<usize> {
    conn.execute("DELETE FROM cel", [])
}

pub fn count(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("SELECT COUNT(*) FROM cel", [], |r| r.get(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn() -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(include_str!("sql/001_cel.sql")).unwrap();
        conn
    }

    fn cel(kind: EventType, secs: i64, uniqueid: &str, linkedid: &str) -> Cel {
        let mut c = Cel::new(kind, EventTime::from_micros(secs * 1_000_000 + 123_456));
        c.uniqueid = uniqueid.into();
        c.linkedid = linkedid.into();
        c.channame = format!("PJSIP/{uniqueid}");
        c
    }

    fn sample() -> Vec<Cel> {
        let mut user = cel(EventType::User("ACCENT_INCALL".into()), 101, "1.1", "1.1");
        user.userdeftype = "ACCENT_INCALL".into();
        user.extra = r#"{"extra":"t"}"#.into();
        vec![
            cel(EventType::ChanStart, 100, "1.1", "1.1"),
            user,
            cel(EventType::ChanStart, 102, "1.2", "1.1"),
            // 1.2 is transferred into call 2.1.
            cel(EventType::BridgeEnter, 200, "1.2", "2.1"),
            cel(EventType::ChanStart, 199, "2.1", "2.1"),
            cel(EventType::LinkedidEnd, 300, "2.1", "2.1"),
        ]
    }

    #[test]
    fn inserting_twice_keeps_one_copy() {
        let conn = conn();
        assert_eq!(insert_batch(&conn, &sample()).unwrap(), 6);
        assert_eq!(insert_batch(&conn, &sample()).unwrap(), 0);
        assert_eq!(count(&conn).unwrap(), 6);
        // A row at another time is another row.
        let mut later = sample().remove(0);
        later.eventtime = EventTime::from_micros(later.eventtime.micros() + 1);
        assert_eq!(insert_batch(&conn, &[later]).unwrap(), 1);
    }

    #[test]
    fn rows_read_back_as_written() {
        let conn = conn();
        insert_batch(&conn, &sample()).unwrap();
        let call1 = by_linkedids(&conn, &["1.1"]).unwrap();
        let cels: Vec<Cel> = call1.iter().map(|s| s.cel.clone()).collect();
        assert_eq!(cels, sample()[..3].to_vec());
        assert_eq!(cels[1].eventtype, EventType::User("ACCENT_INCALL".into()));
        let both = by_linkedids(&conn, &["2.1", "1.1"]).unwrap();
        assert_eq!(both.len(), 6);
        assert!(both.windows(2).all(|w| w[0].cel.eventtime <= w[1].cel.eventtime));
        assert!(by_linkedids(&conn, &[]).unwrap().is_empty());
    }

    #[test]
    fn linkedids_merge_through_shared_channels() {
        let conn = conn();
        insert_batch(&conn, &sample()).unwrap();
        assert_eq!(linkedids_of_uniqueids(&conn, &["1.2"]).unwrap(), vec!["1.1", "2.1"]);
        assert_eq!(linkedids_of_uniqueids(&conn, &["1.1", "9.9"]).unwrap(), vec!["1.1"]);
    }

    #[test]
    fn time_ranges_and_retention() {
        let conn = conn();
        insert_batch(&conn, &sample()).unwrap();
        let t = |s: i64| EventTime::from_micros(s * 1_000_000);
        let range = in_range(&conn, t(101), t(200)).unwrap();
        assert_eq!(
            range
                .iter()
                .map(|s| s.cel.eventtime.micros() / 1_000_000)
                .collect::<Vec<_>>(),
            vec![101, 102, 199]
        );
        assert_eq!(delete_before(&conn, t(150)).unwrap(), 3);
        assert_eq!(delete_older_than_days(&conn, 1, t(86_400 + 250)).unwrap(), 2);
        assert_eq!(count(&conn).unwrap(), 1);
        assert_eq!(delete_all(&conn).unwrap(), 1);
        assert_eq!(count(&conn).unwrap(), 0);
    }
}
