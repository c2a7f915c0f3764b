//! Grouping CELs into calls (section 3.2).
//!
//! One call is one linkedid, but transfers and pickups move channels from one linkedid to
//! another: linkedids whose rows share a channel uniqueid belong to one call (transitively).
//! A call is complete only when every one of its linkedids has ended (`LINKEDID_END`);
//! incomplete ones are left for a later run.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};

use crate::cel::record::{Cel, EventType};

/// The CELs of one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CelGroup {
    /// Sorted with [`linkedid_order`]; the first is the conversation id.
    pub linkedids: Vec<String>,
    /// In event time order; rows of the same time keep their input order.
    pub cels: Vec<Cel>,
}

impl CelGroup {
    /// The smallest linkedid: the call log's `conversation_id`.
    pub fn conversation_id(&self) -> &str {
        self.linkedids.first().map(String::as_str).unwrap_or_default()
    }

    /// True when every linkedid of the group has its `LINKEDID_END`.
    pub fn is_complete(&self) -> bool {
        self.linkedids.iter().all(|l| {
            self.cels
                .iter()
                .any(|c| c.eventtype == EventType::LinkedidEnd && &c.linkedid == l)
        })
    }
}

/// SIP MESSAGE requests run on `Message/ast_msg_queue` channels: they are not calls
/// (section 3.1 has the sweep ignore them).
pub fn is_message_channel(cel: &Cel) -> bool {
    cel.channame.starts_with("Message/ast_msg_queue")
}

/// Orders linkedids as Asterisk makes them (`<epoch>.<sequence>`) numerically, so that
/// `1795870944.9` comes before `1795870944.58`; other spellings (a `systemname` prefix, ids
/// set by ARI) come after, as text.
pub fn linkedid_order(a: &str, b: &str) -> Ordering {
    match (numeric(a), numeric(b)) {
        (Some(x), Some(y)) => x.cmp(&y).then_with(|| a.cmp(b)),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => a.cmp(b),
    }
}

fn numeric(id: &str) -> Option<(u64, u64)> {
    let (secs, seq) = id.split_once('.').unwrap_or((id, "0"));
    Some((secs.parse().ok()?, seq.parse().ok()?))
}

/// A union-find over linkedid indexes.
struct Merge {
    parent: Vec<usize>,
}

impl Merge {
    fn find(&mut self, mut i: usize) -> usize {
        while self.parent[i] != i {
            self.parent[i] = self.parent[self.parent[i]];
            i = self.parent[i];
        }
        i
    }

    fn union(&mut self, a: usize, b: usize) {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra != rb {
            self.parent[ra.max(rb)] = ra.min(rb);
        }
    }
}

/// Splits rows into calls: `(complete, incomplete)`, each ordered by conversation id.
/// Rows of `Message/ast_msg_queue` channels are dropped.
pub fn group(cels: Vec<Cel>) -> (Vec<CelGroup>, Vec<CelGroup>) {
    let cels: Vec<Cel> = cels.into_iter().filter(|c| !is_message_channel(c)).collect();
    let mut index: HashMap<&str, usize> = HashMap::new();
    let mut names: Vec<&str> = Vec::new();
    let mut row_link: Vec<usize> = Vec::with_capacity(cels.len());
    for c in &cels {
        let next = names.len();
        let i = *index.entry(c.linkedid.as_str()).or_insert(next);
        if i == next {
            names.push(c.linkedid.as_str());
        }
        row_link.push(i);
    }
    let mut merge = Merge {
        parent: (0..names.len()).collect(),
    };
    let mut by_uniqueid: HashMap<&str, usize> = HashMap::new();
    for (c, &l) in cels.iter().zip(&row_link) {
        if c.uniqueid.is_empty() {
            continue;
        }
        match by_uniqueid.get(c.uniqueid.as_str()) {
            Some(&other) => merge.union(other, l),
            None => {
                by_uniqueid.insert(c.uniqueid.as_str(), l);
            }
        }
    }
    let roots: Vec<usize> = (0..names.len()).map(|i| merge.find(i)).collect();
    let mut members: BTreeMap<usize, Vec<String>> = BTreeMap::new();
    for (i, name) in names.iter().enumerate() {
        members.entry(roots[i]).or_default().push((*name).to_owned());
    }
    let mut rows: HashMap<usize, Vec<Cel>> = HashMap::new();
    for (c, l) in cels.into_iter().zip(row_link) {
        rows.entry(roots[l]).or_default().push(c);
    }
    let mut groups: Vec<CelGroup> = members
        .into_iter()
        .map(|(root, mut linkedids)| {
            linkedids.sort_by(|a, b| linkedid_order(a, b));
            let mut cels = rows.remove(&root).unwrap_or_default();
            cels.sort_by_key(|c| c.eventtime);
            CelGroup { linkedids, cels }
        })
        .collect();
    groups.sort_by(|a, b| linkedid_order(a.conversation_id(), b.conversation_id()));
    groups.into_iter().partition(CelGroup::is_complete)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cel::EventTime;

    fn cel(t: i64, ty: EventType, uniqueid: &str, linkedid: &str) -> Cel {
        let mut c = Cel::new(ty, EventTime::from_micros(t));
        c.uniqueid = uniqueid.into();
        c.linkedid = linkedid.into();
        c.channame = "PJSIP/x-00000001".into();
        c
    }

    #[test]
    fn merges_through_shared_uniqueids_transitively() {
        let rows = vec![
            cel(3, EventType::ChanStart, "3.1", "3.1"),
            cel(1, EventType::ChanStart, "1.1", "1.1"),
            cel(2, EventType::ChanStart, "2.1", "2.1"),
            // 2.1's channel later carries 1.1's linkedid; 3.1's channel 2.1's.
            cel(4, EventType::BridgeEnter, "2.1", "1.1"),
            cel(5, EventType::BridgeEnter, "3.1", "2.1"),
            cel(6, EventType::LinkedidEnd, "1.1", "1.1"),
            cel(6, EventType::LinkedidEnd, "2.1", "2.1"),
            cel(7, EventType::ChanStart, "9.1", "9.1"),
        ];
        let (complete, incomplete) = group(rows);
        assert_eq!(complete.len(), 0, "3.1 never ended");
        assert_eq!(incomplete.len(), 2);
        assert_eq!(incomplete[0].linkedids, vec!["1.1", "2.1", "3.1"]);
        assert_eq!(incomplete[0].cels.len(), 7);
        assert!(incomplete[0].cels.windows(2).all(|w| w[0].eventtime <= w[1].eventtime));
        assert_eq!(incomplete[1].linkedids, vec!["9.1"]);
    }

    #[test]
    fn complete_groups_and_message_channels() {
        let mut msg = cel(1, EventType::ChanStart, "5.1", "5.1");
        msg.channame = "Message/ast_msg_queue".into();
        let rows = vec![
            msg,
            cel(1, EventType::ChanStart, "1.9", "1.9"),
            cel(2, EventType::LinkedidEnd, "1.9", "1.9"),
            cel(1, EventType::ChanStart, "1.10", "1.10"),
            cel(2, EventType::LinkedidEnd, "1.10", "1.10"),
        ];
        let (complete, incomplete) = group(rows);
        assert!(incomplete.is_empty());
        let ids: Vec<&str> = complete.iter().map(CelGroup::conversation_id).collect();
        assert_eq!(ids, vec!["1.9", "1.10"]);
    }

    #[test]
    fn linkedid_ordering() {
        assert_eq!(linkedid_order("1.9", "1.58"), Ordering::Less);
        assert_eq!(linkedid_order("2.0", "10.0"), Ordering::Less);
        assert_eq!(linkedid_order("1.0", "s05-1001"), Ordering::Less);
        assert_eq!(linkedid_order("s05-1001", "s05-1002"), Ordering::Less);
    }
}
