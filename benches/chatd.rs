//! chatd messages against a large store (issue 7: "chat message post and search p99 with
//! 1 million messages stored"):
//!
//! * posting a message (the membership check, the insert with its search-index and counter
//!   triggers, the commit) next to inserting and committing a bare row of the same text;
//! * reading (a room's page, `from_date`, `search` across the user's rooms with rare, two
//!   and common words, `distinct=room_uuid`) next to reading one message by uuid.
//!
//!     cargo bench --bench chatd [-- --messages 1000000 --samples 200]
//!
//! The store is a real one on disk (SQLite WAL, accentd's schema) in a temporary directory.
//! Messages are made of words drawn from a 5,000-word vocabulary with a Zipf-like skew, so
//! some words are in most messages and others in a few dozen, as in real chat.

#[path = "support/mod.rs"]
mod support;

use std::hint::black_box;
use std::time::{Duration, Instant};

use accentd::chat::messages::model::{ListKind, MessageQuery, NewMessage};
use accentd::chat::messages::store::{self as messages, Among, Author};
use accentd::chat::rooms::store::member_room;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rusqlite::params;
use support::arg;
use uuid::Uuid;

const USERS: usize = 200;
const ROOMS: usize = 1_000;
const WORDS: usize = 5_000;

/// Pronounceable made-up words, all distinct: "bako", "tirelu"...
fn vocabulary() -> Vec<String> {
    let (consonants, vowels) = (b"bdfgklmnprstvz", b"aeiou");
    let syllable = |n: usize| {
        let c = consonants[n % consonants.len()] as char;
        let v = vowels[(n / consonants.len()) % vowels.len()] as char;
        format!("{c}{v}")
    };
    let per = consonants.len() * vowels.len();
    (0..WORDS)
        .map(|i| {
            // i in base `per`, one syllable a digit: distinct words of one length, so no
            // word is part of another.
            let (a, b, c) = (i % per, (i / per) % per, i / (per * per));
            format!("{}{}{}", syllable(a), syllable(b), syllable(c))
        })
        .collect()
}

/// A word index skewed towards the first ones (rank r drawn about as often as 1/r).
fn zipf(rng: &mut StdRng) -> usize {
    let x: f64 = rng.random();
    (((WORDS as f64).powf(x)) as usize).saturating_sub(1).min(WORDS - 1)
}

fn sentence(rng: &mut StdRng, words: &[String]) -> String {
    let n = rng.random_range(3..15);
    (0..n).map(|_| words[zipf(rng)].as_str()).collect::<Vec<_>>().join(" ")
}

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort();
    let i = ((samples.len() as f64 - 1.0) * p).round() as usize;
    samples[i.min(samples.len() - 1)]
}

/// Users, rooms (2 to 4 members; user 0 is in about 1 room in 20) and `count` messages
/// spread over the rooms, one second apart, ending now. Returns the rooms' ids and members.
fn fill(
    conn: &mut rusqlite::Connection,
    tenant: Uuid,
    server: Uuid,
    users: &[Uuid],
    words: &[String],
    count: usize,
) -> anyhow::Result<Vec<(i64, Uuid, Vec<Uuid>)>> {
    let mut rng = StdRng::seed_from_u64(7);
    let tx = conn.transaction()?;
    let mut rooms = Vec::with_capacity(ROOMS);
    let mut keys = std::collections::HashSet::new();
    while rooms.len() < ROOMS {
        let mut members: Vec<Uuid> = Vec::new();
        if rooms.len() % 20 == 0 {
            members.push(users[0]);
        }
        let size = rng.random_range(2..5);
        while members.len() < size {
            let u = users[rng.random_range(1..users.len())];
            if !members.contains(&u) {
                members.push(u);
            }
        }
        // One room per user set, as accentd keeps it.
        let key = accentd::chat::rooms::model::members_key(members.iter().copied());
        if !keys.insert(key.clone()) {
            continue;
        }
        let uuid = Uuid::new_v4();
        tx.execute(
            "INSERT INTO chat_room (uuid, tenant_uuid, members_key, created_us) VALUES (?1, ?2, ?3, 0)",
            params![uuid.to_string(), tenant.to_string(), key],
        )?;
        let id = tx.last_insert_rowid();
        for (pos, m) in members.iter().enumerate() {
            tx.execute(
                "INSERT INTO chat_room_user (room_id, user_uuid, tenant_uuid, wazo_uuid, position) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![id, m.to_string(), tenant.to_string(), server.to_string(), pos as i64],
            )?;
        }
        rooms.push((id, uuid, members));
    }
    tx.commit()?;
    let now = accentd::chat::time::now_us();
    let started = Instant::now();
    let mut n = 0;
    while n < count {
        let tx = conn.transaction()?;
        {
            let mut stmt = tx.prepare_cached(
                "INSERT INTO chat_message (uuid, room_id, content, user_uuid, tenant_uuid, wazo_uuid, created_us)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?;
            for _ in 0..10_000.min(count - n) {
                let (id, _, members) = &rooms[rng.random_range(0..rooms.len())];
                let author = members[rng.random_range(0..members.len())];
                let at = now - (count - n) as i64 * 1_000_000;
                stmt.execute(params![
                    Uuid::new_v4().to_string(),
                    id,
                    sentence(&mut rng, words),
                    author.to_string(),
                    tenant.to_string(),
                    server.to_string(),
                    at
                ])?;
                n += 1;
            }
        }
        tx.commit()?;
        if n % 200_000 == 0 {
            eprintln!("  {n} messages stored ({:.0} s)", started.elapsed().as_secs_f64());
        }
    }
    conn.execute_batch("ANALYZE")?;
    Ok(rooms)
}

/// Prints p50, p99 and the ratio of p99 to the baseline's p99 (`None`: this is the
/// baseline); returns p99.
fn report(name: &str, times: &mut [Duration], base: Option<Duration>) -> Duration {
    let (p50, p99) = (percentile(times, 0.5), percentile(times, 0.99));
    let ratio = p99.as_secs_f64() / base.unwrap_or(p99).as_secs_f64().max(1e-9);
    println!("  {name:<60} p50 {p50:>10.3?}  p99 {p99:>10.3?}  ratio {ratio:.1}");
    p99
}

fn main() -> anyhow::Result<()> {
    let count = arg("--messages", 100_000);
    let samples = arg("--samples", 200).max(10);
    let dir = tempfile::tempdir()?;
    let mut conn = support::open_store(dir.path())?;
    let (tenant, server) = (Uuid::new_v4(), Uuid::new_v4());
    let users: Vec<Uuid> = (0..USERS).map(|_| Uuid::new_v4()).collect();
    let words = vocabulary();
    eprintln!("filling {count} messages …");
    let filled = Instant::now();
    let rooms = fill(&mut conn, tenant, server, &users, &words, count)?;
    let fill_secs = filled.elapsed().as_secs_f64();
    let me = users[0];
    let (my_room_id, my_room, _) = rooms
        .iter()
        .find(|(_, _, m)| m.contains(&me))
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("user 0 has no room"))?;
    let mut rng = StdRng::seed_from_u64(11);
    println!("command: cargo bench --bench chatd -- --messages {count} --samples {samples}");
    println!("{count} messages in {ROOMS} rooms stored in {fill_secs:.0} s; {samples} samples each");

    // Writes.
    conn.execute_batch("CREATE TABLE bench_plain (id INTEGER PRIMARY KEY, content TEXT NOT NULL)")?;
    let mut base = Vec::with_capacity(samples);
    let mut post = Vec::with_capacity(samples);
    for _ in 0..samples {
        let text = sentence(&mut rng, &words);
        let t = Instant::now();
        let tx = conn.transaction()?;
        tx.execute("INSERT INTO bench_plain (content) VALUES (?1)", [&text])?;
        tx.commit()?;
        base.push(t.elapsed());
        let t = Instant::now();
        let tx = conn.transaction()?;
        let (room_id, members) = member_room(&tx, tenant, my_room, me)
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .ok_or_else(|| anyhow::anyhow!("not a member"))?;
        let author = Author {
            room_id,
            room_uuid: my_room,
            user_uuid: me,
            tenant_uuid: tenant,
            wazo_uuid: server,
        };
        let message = NewMessage {
            content: text,
            alias: None,
        };
        black_box(
            messages::insert(&tx, &author, message, accentd::chat::time::now_us())
                .map_err(|e| anyhow::anyhow!("{e}"))?,
        );
        tx.commit()?;
        black_box(members);
        post.push(t.elapsed());
    }
    println!("writes:");
    let b99 = report("baseline: insert + commit a bare row of the same text", &mut base, None);
    report(
        "POST /users/me/rooms/{uuid}/messages (store part)",
        &mut post,
        Some(b99),
    );

    // Reads.
    let ids: Vec<String> = conn
        .prepare("SELECT uuid FROM chat_message ORDER BY random() LIMIT 1000")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let mut base = Vec::with_capacity(samples);
    for i in 0..samples {
        let t = Instant::now();
        let row: String = conn.query_row(
            "SELECT content FROM chat_message WHERE uuid = ?1",
            [&ids[i % ids.len()]],
            |r| r.get(0),
        )?;
        black_box(row);
        base.push(t.elapsed());
    }
    println!("reads:");
    let b99 = report("baseline: one message by uuid", &mut base, None);
    let room_among = Among::Room(my_room_id);
    let user_among = Among::UserRooms { user: me, tenant };
    // A rare word (rank ~3000: in a few dozen messages per 100,000) and a common one.
    let (rare, common, second) = (&words[3_000], &words[1], &words[40]);
    let hour_ago = accentd::chat::time::created_at(accentd::chat::time::now_us() - 3_600_000_000);
    let cases: Vec<(String, Among, MessageQuery)> = vec![
        (
            "GET rooms/{uuid}/messages?limit=100".into(),
            room_among,
            q("limit=100", ListKind::Room)?,
        ),
        (
            "GET rooms/{uuid}/messages?from_date=<1 h ago>".into(),
            room_among,
            q(&format!("from_date={}", hour_ago.replace('+', "%2B")), ListKind::Room)?,
        ),
        (
            format!("GET rooms/messages?search={rare}&limit=100"),
            user_among,
            q(&format!("search={rare}&limit=100"), ListKind::User)?,
        ),
        (
            format!("GET rooms/messages?search={second} {rare}"),
            user_among,
            q(&format!("search={second}%20{rare}&limit=100"), ListKind::User)?,
        ),
        (
            format!("GET rooms/messages?search={common}&limit=100"),
            user_among,
            q(&format!("search={common}&limit=100"), ListKind::User)?,
        ),
        (
            "GET rooms/messages?distinct=room_uuid".into(),
            user_among,
            q("distinct=room_uuid", ListKind::User)?,
        ),
    ];
    for (name, among, query) in &cases {
        let mut times = Vec::with_capacity(samples);
        let mut found = 0;
        for _ in 0..samples {
            let t = Instant::now();
            let (items, filtered) = messages::list(&conn, *among, query).map_err(|e| anyhow::anyhow!("{e}"))?;
            let total = messages::total(&conn, *among).map_err(|e| anyhow::anyhow!("{e}"))?;
            times.push(t.elapsed());
            found = filtered.unwrap_or(total);
            black_box(items);
        }
        report(&format!("{name} ({found} found)"), &mut times, Some(b99));
    }
    Ok(())
}

fn q(query: &str, kind: ListKind) -> anyhow::Result<MessageQuery> {
    MessageQuery::parse(query, kind).map_err(|e| anyhow::anyhow!("{e}"))
}
