//! Call-log generation from CEL (issue 4, step 2), following section 3 of the call-logd
//! reference:
//!
//! - [`group`]: rows → calls (linkedids merged through shared channels), complete or not (3.2);
//! - [`local_originate`], then dispatch: the first channel is the caller ([`caller`], 3.4),
//!   every other started channel a callee ([`callee`], 3.5) (3.3);
//! - [`participants`]: lines → users, tenant, recordings, discard rule (3.7);
//! - [`lines`]: the line-identity and context resolvers (`calllog_line` and `calllog_context`
//!   until confd lands).
//!
//! Deterministic: the same rows give the same logs, and `conversation_id` (the smallest
//! linkedid) lets the store replace a log instead of adding another.

pub mod callee;
pub mod caller;
mod draft;
pub mod group;
pub mod lines;
pub mod local_originate;
pub mod participants;

use std::collections::BTreeSet;

use rusqlite::Connection;
use uuid::Uuid;

pub use group::{group, CelGroup};
pub use lines::{
    identity, ContextResolver, LineOwner, LineResolver, StaticContexts, StaticLines, StoreContexts, StoreLines,
};

use self::draft::Draft;
use crate::calllog::cdr::model::CallLog;
use crate::cel::record::{Cel, EventType};
use crate::cel::store;

/// Why a call could not be generated. Each names the call, so a batch can report it and go on.
#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    #[error("call {linkedid}: {reason}")]
    Corrupt { linkedid: String, reason: String },
    #[error("reading CELs: {0}")]
    Store(#[from] rusqlite::Error),
}

/// What a generation run gave: the logs, how many calls were not finished yet (retried
/// later), and the calls that could not be read.
#[derive(Debug, Default)]
pub struct GenerateOutcome {
    pub logs: Vec<CallLog>,
    pub incomplete: usize,
    pub failed: Vec<(String, String)>,
}

/// How many rounds of "their channels → other linkedids" [`generate_for_linkedids`] follows;
/// a real call chains a few transfers at most, and a runaway chain must not read the table.
const MAX_EXPANSION_ROUNDS: usize = 16;
/// At most this many linkedids in one expansion.
const MAX_EXPANDED_LINKEDIDS: usize = 10_000;

fn corrupt(group: &CelGroup, reason: impl Into<String>) -> GenerateError {
    GenerateError::Corrupt {
        linkedid: group.conversation_id().to_owned(),
        reason: reason.into(),
    }
}

/// Rows generation cannot make sense of: they fail the call rather than give a wrong log.
fn check(group: &CelGroup) -> Result<(), GenerateError> {
    if group.cels.is_empty() {
        return Err(corrupt(group, "no CEL rows"));
    }
    if let Some(c) = group
        .cels
        .iter()
        .find(|c| c.eventtype == EventType::ChanStart && c.uniqueid.trim().is_empty())
    {
        return Err(corrupt(
            group,
            format!("CHAN_START of channel `{}` has no uniqueid", c.channame),
        ));
    }
    Ok(())
}

/// The call log of one complete group; `Ok(None)` when the rules discard it (no start, no
/// source name nor number, an originate missing its legs).
pub fn generate(
    group: &CelGroup,
    lines: &dyn LineResolver,
    contexts: &dyn ContextResolver,
    default_tenant: Uuid,
) -> Result<Option<CallLog>, GenerateError> {
    check(group)?;
    let draft = if local_originate::applies(&group.cels) {
        local_originate::interpret(&group.cels)
    } else {
        dispatch(&group.cels)
    };
    let Some(draft) = draft else {
        return Ok(None);
    };
    let log = participants::finish(draft, lines, contexts, default_tenant).map(|mut log| {
        log.conversation_id = group.conversation_id().to_owned();
        log
    });
    if let Some(log) = &log {
        if log.end_us.is_some_and(|end| end < log.start_us) {
            return Err(corrupt(group, "the caller's channel ends before it starts"));
        }
    }
    Ok(log)
}

/// Section 3.3, `Dispatch`: the first CHAN_START is the caller, every other started channel a
/// callee; caller rows are read first (direction and destination details must be known when
/// the callees are read), then callee rows, each in time order.
fn dispatch(cels: &[Cel]) -> Option<Draft> {
    let caller_id = cels
        .iter()
        .find(|c| c.eventtype == EventType::ChanStart)?
        .uniqueid
        .as_str();
    let callees: BTreeSet<&str> = cels
        .iter()
        .filter(|c| c.eventtype == EventType::ChanStart && c.uniqueid != caller_id)
        .map(|c| c.uniqueid.as_str())
        .collect();
    let mut d = Draft::default();
    for cel in cels.iter().filter(|c| c.uniqueid == caller_id) {
        caller::interpret(&mut d, cel);
    }
    for cel in cels.iter().filter(|c| callees.contains(c.uniqueid.as_str())) {
        callee::interpret(&mut d, cel);
    }
    Some(d)
}

/// Generates every complete group of `cels` (already expanded): a failed call is reported and
/// the others go on.
pub fn generate_all(
    cels: Vec<Cel>,
    lines: &dyn LineResolver,
    contexts: &dyn ContextResolver,
    default_tenant: Uuid,
) -> GenerateOutcome {
    let (complete, incomplete) = group(cels);
    let mut out = GenerateOutcome {
        incomplete: incomplete.len(),
        ..GenerateOutcome::default()
    };
    for g in &complete {
        match generate(g, lines, contexts, default_tenant) {
            Ok(Some(log)) => out.logs.push(log),
            Ok(None) => {}
            Err(e) => out.failed.push((g.conversation_id().to_owned(), e.to_string())),
        }
    }
    out
}

/// Section 3.1's expansion: the rows of these linkedids, plus those of every linkedid sharing
/// a channel with them, transitively (bounded), in time order.
pub fn expand(conn: &Connection, linkedids: &[String]) -> Result<Vec<Cel>, GenerateError> {
    let mut known: BTreeSet<String> = linkedids.iter().cloned().collect();
    for _ in 0..MAX_EXPANSION_ROUNDS {
        let ids: Vec<&str> = known.iter().map(String::as_str).collect();
        let rows = store::by_linkedids(conn, &ids)?;
        let uniqueids: BTreeSet<&str> = rows.iter().map(|r| r.cel.uniqueid.as_str()).collect();
        let uniqueids: Vec<&str> = uniqueids.into_iter().collect();
        let found = store::linkedids_of_uniqueids(conn, &uniqueids)?;
        let before = known.len();
        known.extend(found);
        if known.len() == before || known.len() > MAX_EXPANDED_LINKEDIDS {
            return Ok(rows.into_iter().map(|r| r.cel).collect());
        }
    }
    // A chain longer than any real call: read what was found so far.
    let ids: Vec<&str> = known.iter().map(String::as_str).collect();
    Ok(store::by_linkedids(conn, &ids)?.into_iter().map(|r| r.cel).collect())
}

/// Generates the calls of these linkedids from the `cel` table (the live path calls it on
/// `LINKEDID_END`, the batch on ranges).
pub fn generate_for_linkedids(
    conn: &Connection,
    linkedids: &[String],
    lines: &dyn LineResolver,
    contexts: &dyn ContextResolver,
    default_tenant: Uuid,
) -> Result<GenerateOutcome, GenerateError> {
    let rows = expand(conn, linkedids)?;
    Ok(generate_all(rows, lines, contexts, default_tenant))
}
