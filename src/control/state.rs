//! The store behind [`LiveState`] and the source-independent apply logic.
//!
//! Both event sources are translated (in `ami.rs` and `ari.rs`) into the same few operations
//! on a [`Writer`]: "these facts about channel X, as of time T from source S", "X is gone",
//! "X entered bridge B", … The writer owns the working copy of the state and the bookkeeping
//! that readers never see (per-fact stamps, tombstones, indexes); after each applied event it
//! publishes what changed into the `DashMap`s readers use, and sends the changes.
//!
//! # Concurrency
//!
//! Writers (the AMI task, the ARI task, a resync) take one `std::sync::Mutex` for the duration
//! of one event: a few microseconds, never across an `.await` (nothing here is async). Readers
//! never take that lock: they read the published `DashMap`s, which only lock one shard for the
//! time of a lookup or a clone. A reader can see one event half-published (the channel updated
//! but not yet its call); each entry on its own is always a consistent snapshot.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use dashmap::DashMap;
use time::OffsetDateTime;
use tokio::sync::broadcast;

use super::changes::StateChange;
use super::model::{
    endpoint_of, technology_of, Bridge, Call, CallParty, CallState, Channel, ChannelState, Counts, DeviceState,
    DeviceStateValue, Dialplan, Hint, Party, StateView, Talk,
};
use crate::ami::AmiMessage;
use crate::ari::AriEvent;

/// Sets a field of an `Arc`-shared record when the value differs (copying the record only
/// then) and says whether it changed.
macro_rules! set_field {
    ($arc:expr, $field:ident, $value:expr) => {{
        let value = $value;
        if $arc.$field != value {
            Arc::make_mut(&mut $arc).$field = value;
            true
        } else {
            false
        }
    }};
}

/// [`set_field!`] for a `String` field set from a `&str`.
macro_rules! set_str {
    ($arc:expr, $field:ident, $value:expr) => {{
        let value: &str = $value;
        if $arc.$field != value {
            Arc::make_mut(&mut $arc).$field = value.to_owned();
            true
        } else {
            false
        }
    }};
}

/// `for $x in self.$field` that gives the emptied vector back afterwards, so its capacity is
/// reused by the next event instead of being freed and allocated again.
macro_rules! for_each_taken {
    ($self:ident . $field:ident, |$x:ident| $body:block) => {{
        let mut taken = std::mem::take(&mut $self.$field);
        for $x in taken.drain(..) $body
        if $self.$field.is_empty() {
            $self.$field = taken;
        }
    }};
}

/// Default capacity of the change stream: how many changes a subscriber may fall behind before
/// it gets `Lagged`. A burst of 200 calls makes about 30 changes per call.
pub const DEFAULT_CHANGE_CAPACITY: usize = 16_384;

/// How many received DTMF digits a channel keeps.
pub const MAX_DTMF_DIGITS: usize = 32;

/// How many dead channel ids are remembered (see [`Tombs`]). A dead id only needs remembering
/// while the slower stream may still mention it (milliseconds to seconds); 16 Ki ids is far
/// more than the channels that die in that time even in a burst, and costs about 1 MB.
const CHANNEL_TOMBSTONES: usize = 16_384;
/// Same for destroyed bridges.
const BRIDGE_TOMBSTONES: usize = 4_096;

/// Where a fact came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Source {
    /// Nothing yet.
    None,
    Ami,
    Ari,
    /// A resync snapshot: taken as true, and any later event may change it.
    Resync,
}

/// When and from where a fact was last set.
///
/// Both streams describe the same channels but arrive independently, so one of them can be
/// late: an AMI `Newstate Ringing` may arrive after ARI already said `Up`. A fact is therefore
/// only overwritten by the same source (each stream is ordered, so its latest word wins) or by
/// the other source when that event is not older, compared in milliseconds (ARI timestamps have
/// millisecond precision, AMI's microseconds; within one millisecond the later arrival wins).
/// An event without a timestamp (AMI without `timestampevents`) is always taken.
#[derive(Debug, Clone, Copy)]
pub(super) struct Stamp {
    pub ms: Option<i64>,
    pub src: Source,
}

impl Stamp {
    const NONE: Stamp = Stamp {
        ms: None,
        src: Source::None,
    };

    fn accepts(self, new: Stamp) -> bool {
        if self.src == new.src {
            return true;
        }
        match (self.ms, new.ms) {
            (Some(old), Some(new)) => new >= old,
            _ => true,
        }
    }
}

/// Facts about one channel carried by one event, borrowed from it. `None` = not carried.
#[derive(Debug, Default)]
pub(super) struct ChanFacts<'a> {
    pub id: &'a str,
    pub name: Option<&'a str>,
    /// The state as `ast_state2str` writes it (`Ring`, `Ringing`, `Up`…), the same in AMI
    /// (`ChannelStateDesc`) and ARI (`state`).
    pub state: Option<&'a str>,
    /// (name, number), `<unknown>` already mapped to `""`.
    pub caller: Option<(&'a str, &'a str)>,
    pub connected: Option<(&'a str, &'a str)>,
    /// (context, exten, priority).
    pub dialplan: Option<(&'a str, &'a str, i64)>,
    /// (application, data).
    pub app: Option<(&'a str, &'a str)>,
    /// The linkedid, only from AMI (authoritative).
    pub linkedid: Option<&'a str>,
    /// ARI `creationtime`: the exact creation time.
    pub created_text: Option<&'a str>,
    /// The time of an AMI `Newchannel`: the creation time when ARI does not say.
    pub created_ms: Option<i64>,
}

/// Facts about one bridge carried by one event.
#[derive(Debug, Default)]
pub(super) struct BridgeFacts<'a> {
    pub id: &'a str,
    pub technology: Option<&'a str>,
    pub class: Option<&'a str>,
    pub bridge_type: Option<&'a str>,
    pub creator: Option<&'a str>,
    pub name: Option<&'a str>,
    pub created_text: Option<&'a str>,
    pub created_ms: Option<i64>,
}

/// A position in the sequence of applied events, taken with [`LiveState::mark`] before a
/// resync snapshot is fetched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Mark(u64);

/// What Asterisk says exists, read after a (re)connection, to replace the live state with.
///
/// Each part is optional: `None` means "not read", and the facts only that part could tell are
/// left as they are; `Some(vec![])` means "read, and there is none". The AMI lists are the
/// messages of the list actions as received (the framing response and the `…Complete` event
/// may be included: only the item events are read).
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// `GET /ari/channels`.
    pub ari_channels: Option<Vec<crate::ari::models::Channel>>,
    /// `GET /ari/bridges`.
    pub ari_bridges: Option<Vec<crate::ari::models::Bridge>>,
    /// The `CoreShowChannel` events of `Action: CoreShowChannels`.
    pub ami_channels: Option<Vec<AmiMessage>>,
    /// The `DeviceStateChange` events of `Action: DeviceStateList`.
    pub ami_device_states: Option<Vec<AmiMessage>>,
    /// The `ExtensionStatus` events of `Action: ExtensionStateList`.
    pub ami_hints: Option<Vec<AmiMessage>>,
    /// [`LiveState::mark`] taken before the lists were requested. Events applied after it are
    /// newer than the lists: what they created or changed is kept as is, even when absent from
    /// the lists (a channel created while the lists were read). `None`: the lists are newer
    /// than every applied event.
    pub mark: Option<Mark>,
}

/// Per-fact stamps of a channel.
#[derive(Debug, Clone, Copy)]
struct ChanStamps {
    name: Stamp,
    state: Stamp,
    caller: Stamp,
    connected: Stamp,
    dialplan: Stamp,
    app: Stamp,
    bridge: Stamp,
    hold: Stamp,
    dial: Stamp,
}

impl Default for ChanStamps {
    fn default() -> Self {
        ChanStamps {
            name: Stamp::NONE,
            state: Stamp::NONE,
            caller: Stamp::NONE,
            connected: Stamp::NONE,
            dialplan: Stamp::NONE,
            app: Stamp::NONE,
            bridge: Stamp::NONE,
            hold: Stamp::NONE,
            dial: Stamp::NONE,
        }
    }
}

struct ChanRec {
    /// The working copy, shared with the published map until the next change
    /// (`Arc::make_mut` copies it then).
    ch: Arc<Channel>,
    st: ChanStamps,
    /// The linkedid came from AMI: ARI inference no longer touches it.
    linkedid_ami: bool,
    /// `created_at` is ARI's exact `creationtime`.
    created_exact: bool,
    created_ms: Option<i64>,
    /// Created in state `Down`: an outgoing leg (dialed or originated), whose linkedid is not
    /// its own when it was dialed (see [`Writer::settle`]).
    created_down: bool,
    /// The source that owns `dtmf_received` (digits are appended, so only one source may
    /// append, or each digit would be counted twice).
    dtmf_src: Source,
    /// Last event that touched the channel.
    seq: u64,
    dirty: bool,
}

struct BridgeRec {
    b: Arc<Bridge>,
    members: BTreeSet<String>,
    tech: Stamp,
    created_exact: bool,
    seq: u64,
    dirty: bool,
}

#[derive(Default)]
struct CallRec {
    members: BTreeSet<String>,
    /// The originating channel's party, kept after it is gone.
    caller: Option<CallParty>,
    transferred: bool,
    created_ms: Option<i64>,
    dirty: bool,
}

struct DevRec {
    state: DeviceStateValue,
    stamp: Stamp,
    seq: u64,
}

/// Ids of things that are gone, so that a late event from the slower stream does not bring
/// them back as ghosts. Bounded: the oldest are forgotten first.
struct Tombs {
    map: HashMap<String, (Option<i64>, u64)>,
    order: VecDeque<(String, u64)>,
    cap: usize,
    gen: u64,
}

impl Tombs {
    fn new(cap: usize) -> Self {
        Tombs {
            map: HashMap::new(),
            order: VecDeque::new(),
            cap,
            gen: 0,
        }
    }

    fn insert(&mut self, id: &str, ms: Option<i64>) {
        self.gen += 1;
        self.map.insert(id.to_owned(), (ms, self.gen));
        self.order.push_back((id.to_owned(), self.gen));
        while self.map.len() > self.cap || self.order.len() > 2 * self.cap {
            let Some((old, gen)) = self.order.pop_front() else {
                break;
            };
            if self.map.get(&old).is_some_and(|(_, g)| *g == gen) {
                self.map.remove(&old);
            }
        }
    }

    /// `Some(time of death)` when the id is dead.
    fn get(&self, id: &str) -> Option<Option<i64>> {
        self.map.get(id).map(|(ms, _)| *ms)
    }

    fn remove(&mut self, id: &str) {
        self.map.remove(id);
    }
}

/// Whether a creation seen at `when` is a new life of an id that died at `died`: only when it
/// is strictly later. A late creation event of the dead channel itself is never later than its
/// death, so it cannot resurrect it; an ARI client that reuses a channel id (`s05-1001`) for a
/// new channel gets it back.
fn revives(when: Option<i64>, died: Option<i64>) -> bool {
    matches!((when, died), (Some(w), Some(d)) if w > d)
}

/// The writer side: the working state and its bookkeeping. Only touched under the lock.
pub(super) struct Writer {
    seq: u64,
    /// AMI feeds the state: linkedids come from it (see [`Writer::settle`]).
    pub(super) ami_linked: bool,
    /// A resync is being applied: nothing waits for AMI.
    in_resync: bool,
    /// Latest event time seen, for tombstones of things removed by a resync.
    clock_ms: Option<i64>,
    chans: HashMap<String, ChanRec>,
    /// Channel name -> id.
    names: HashMap<String, String>,
    bridges: HashMap<String, BridgeRec>,
    calls: HashMap<String, CallRec>,
    devices: HashMap<String, DevRec>,
    hints: HashMap<(String, String), (Hint, u64)>,
    chan_tombs: Tombs,
    bridge_tombs: Tombs,
    dirty_chans: Vec<String>,
    gone_chans: Vec<String>,
    /// Hangup cause and time of the channels in `gone_chans`, for their last snapshot.
    gone_causes: HashMap<String, (Option<i64>, Option<i64>)>,
    dirty_bridges: Vec<String>,
    gone_bridges: Vec<String>,
    /// Bridges whose membership changed: their members' `talking_to` must be recomputed.
    dirty_members: Vec<String>,
    dirty_calls: Vec<String>,
    dirty_devices: Vec<String>,
    gone_devices: Vec<String>,
    dirty_hints: Vec<(String, String)>,
    gone_hints: Vec<(String, String)>,
    out: Vec<StateChange>,
}

fn ms_to_time(ms: i64) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()
}

/// The name of the `;1` half of a Local channel's `;2` half.
fn local_one_of(name: &str) -> Option<String> {
    let base = name.strip_suffix(";2")?;
    name.starts_with("Local/").then(|| format!("{base};1"))
}

/// The name of the `;2` half of a Local channel's `;1` half.
fn local_two_of(name: &str) -> Option<String> {
    let base = name.strip_suffix(";1")?;
    name.starts_with("Local/").then(|| format!("{base};2"))
}

impl Writer {
    fn new() -> Self {
        Writer {
            seq: 0,
            ami_linked: false,
            in_resync: false,
            clock_ms: None,
            chans: HashMap::new(),
            names: HashMap::new(),
            bridges: HashMap::new(),
            calls: HashMap::new(),
            devices: HashMap::new(),
            hints: HashMap::new(),
            chan_tombs: Tombs::new(CHANNEL_TOMBSTONES),
            bridge_tombs: Tombs::new(BRIDGE_TOMBSTONES),
            dirty_chans: Vec::new(),
            gone_chans: Vec::new(),
            gone_causes: HashMap::new(),
            dirty_bridges: Vec::new(),
            gone_bridges: Vec::new(),
            dirty_members: Vec::new(),
            dirty_calls: Vec::new(),
            dirty_devices: Vec::new(),
            gone_devices: Vec::new(),
            dirty_hints: Vec::new(),
            gone_hints: Vec::new(),
            out: Vec::new(),
        }
    }

    /// Starts one applied event.
    pub(super) fn begin(&mut self, ms: Option<i64>) {
        self.seq += 1;
        if let Some(ms) = ms {
            self.clock_ms = Some(self.clock_ms.map_or(ms, |c| c.max(ms)));
        }
    }

    fn mark_chan(&mut self, id: &str) {
        if let Some(rec) = self.chans.get_mut(id) {
            if !rec.dirty {
                rec.dirty = true;
                self.dirty_chans.push(id.to_owned());
            }
        }
    }

    fn mark_bridge(&mut self, id: &str) {
        if let Some(rec) = self.bridges.get_mut(id) {
            if !rec.dirty {
                rec.dirty = true;
                self.dirty_bridges.push(id.to_owned());
            }
        }
    }

    fn mark_members(&mut self, id: &str) {
        if !self.dirty_members.iter().any(|b| b == id) {
            self.dirty_members.push(id.to_owned());
        }
        self.mark_bridge(id);
    }

    fn mark_call(&mut self, linkedid: &str) {
        if let Some(rec) = self.calls.get_mut(linkedid) {
            if !rec.dirty {
                rec.dirty = true;
                self.dirty_calls.push(linkedid.to_owned());
            }
        }
    }

    // ------------------------------------------------------------ channels

    /// Applies the facts an event carries about a channel. A channel unknown so far is created
    /// (from a creation event, or from any event that names it: a missed `Newchannel` must not
    /// hide a live channel) unless it is dead; `create` marks the creation events, which alone
    /// may bring back a dead id (see [`revives`]). Returns whether the channel exists after.
    pub(super) fn channel(&mut self, f: &ChanFacts<'_>, stamp: Stamp, create: bool) -> bool {
        if f.id.is_empty() {
            return false;
        }
        if let Some(died) = self.chan_tombs.get(f.id) {
            let when = stamp.ms.or_else(|| f.created_text.and_then(parse_ari_ms));
            if !(create && revives(when, died)) {
                return false;
            }
            self.chan_tombs.remove(f.id);
        }
        let is_new = !self.chans.contains_key(f.id);
        if is_new {
            let Some(name) = f.name else { return false };
            self.insert_channel(f.id, name, f.linkedid);
        }
        let seq = self.seq;
        // A resync lists channels without saying when they were answered: unknown then.
        let answered_ms = if self.in_resync {
            None
        } else {
            stamp.ms.or(self.clock_ms)
        };
        let Some(rec) = self.chans.get_mut(f.id) else {
            return false;
        };
        let mut changed = false;
        let mut renamed: Option<String> = None;
        if let Some(name) = f.name {
            if rec.st.name.accepts(stamp) {
                rec.st.name = stamp;
                if rec.ch.name != name {
                    let ch = Arc::make_mut(&mut rec.ch);
                    renamed = Some(std::mem::replace(&mut ch.name, name.to_owned()));
                    ch.technology = technology_of(name).to_owned();
                    ch.endpoint = endpoint_of(name).to_owned();
                    changed = true;
                }
            }
        }
        if let Some(state) = f.state {
            if rec.st.state.accepts(stamp) {
                rec.st.state = stamp;
                if rec.ch.state.as_str() != state {
                    let ch = Arc::make_mut(&mut rec.ch);
                    ch.state = ChannelState::from(state);
                    if ch.state == ChannelState::Up && ch.answered_at.is_none() {
                        ch.answered_at = answered_ms.and_then(ms_to_time);
                    }
                    changed = true;
                }
            }
        }
        if let Some((name, number)) = f.caller {
            if rec.st.caller.accepts(stamp) {
                rec.st.caller = stamp;
                changed |= set_party(&mut rec.ch, false, name, number);
            }
        }
        if let Some((name, number)) = f.connected {
            if rec.st.connected.accepts(stamp) {
                rec.st.connected = stamp;
                changed |= set_party(&mut rec.ch, true, name, number);
            }
        }
        if let Some((context, exten, priority)) = f.dialplan {
            if rec.st.dialplan.accepts(stamp) {
                rec.st.dialplan = stamp;
                let d = &rec.ch.dialplan;
                if d.context != context || d.exten != exten || d.priority != priority {
                    let d = &mut Arc::make_mut(&mut rec.ch).dialplan;
                    context.clone_into(&mut d.context);
                    exten.clone_into(&mut d.exten);
                    d.priority = priority;
                    changed = true;
                }
            }
        }
        if let Some((app, data)) = f.app {
            if rec.st.app.accepts(stamp) {
                rec.st.app = stamp;
                let d = &rec.ch.dialplan;
                if d.app_name != app || d.app_data != data {
                    let d = &mut Arc::make_mut(&mut rec.ch).dialplan;
                    app.clone_into(&mut d.app_name);
                    data.clone_into(&mut d.app_data);
                    changed = true;
                }
            }
        }
        if !rec.created_exact {
            if let Some(ms) = f.created_text.and_then(parse_ari_ms) {
                rec.created_exact = true;
                rec.created_ms = Some(ms);
                Arc::make_mut(&mut rec.ch).created_at = ms_to_time(ms);
                changed = true;
            } else if let (Some(ms), None) = (f.created_ms, rec.created_ms) {
                rec.created_ms = Some(ms);
                Arc::make_mut(&mut rec.ch).created_at = ms_to_time(ms);
                changed = true;
            }
        }
        rec.seq = seq;
        if is_new {
            rec.created_down = rec.ch.state == ChannelState::Down;
        }
        if changed {
            self.mark_chan(f.id);
        }
        if let Some(old) = renamed {
            if self.names.get(&old).is_some_and(|id| id == f.id) {
                self.names.remove(&old);
            }
            if let Some(name) = f.name {
                self.names.insert(name.to_owned(), f.id.to_owned());
            }
        }
        if let Some(linkedid) = f.linkedid.filter(|l| !l.is_empty()) {
            self.set_linkedid(f.id, linkedid, true);
        } else {
            self.settle(f.id, false);
        }
        true
    }

    /// Creates a channel. Its linkedid is the one AMI gave, or the `;1` half's for the `;2`
    /// half of a Local channel (Asterisk creates both with the same); otherwise it is unknown
    /// for now (`""`, in no call) until [`settle`](Self::settle) or an AMI event decides.
    fn insert_channel(&mut self, id: &str, name: &str, given: Option<&str>) {
        let linkedid = given
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .or_else(|| self.partner_linkedid(name))
            .unwrap_or_default();
        let ch = Channel {
            id: id.to_owned(),
            name: name.to_owned(),
            technology: technology_of(name).to_owned(),
            endpoint: endpoint_of(name).to_owned(),
            state: ChannelState::Down,
            caller: Party::default(),
            connected: Party::default(),
            linkedid: linkedid.clone(),
            dialplan: Dialplan::default(),
            bridge_id: None,
            talking_to: Vec::new(),
            on_hold: false,
            moh: false,
            muted: None,
            queue: None,
            stasis_app: None,
            dialed_by: None,
            dial_status: None,
            dtmf_received: String::new(),
            dtmf_count: 0,
            answered_at: None,
            hangup_cause: None,
            hungup_at: None,
            created_at: None,
        };
        self.chans.insert(
            id.to_owned(),
            ChanRec {
                ch: Arc::new(ch),
                st: ChanStamps::default(),
                linkedid_ami: false,
                created_exact: false,
                created_ms: None,
                created_down: false,
                dtmf_src: Source::None,
                seq: self.seq,
                dirty: false,
            },
        );
        self.names.insert(name.to_owned(), id.to_owned());
        self.mark_chan(id);
        if !linkedid.is_empty() {
            self.calls
                .entry(linkedid.clone())
                .or_default()
                .members
                .insert(id.to_owned());
            self.mark_call(&linkedid);
        }
    }

    /// The linkedid of the `;1` half when `name` is the `;2` half of a Local channel and the
    /// `;1` half's linkedid is known.
    fn partner_linkedid(&self, name: &str) -> Option<String> {
        let one = local_one_of(name)?;
        let rec = self.chans.get(self.names.get(&one)?)?;
        (!rec.ch.linkedid.is_empty()).then(|| rec.ch.linkedid.clone())
    }

    /// Gives a channel whose linkedid is still unknown the one Asterisk gives a new channel
    /// (its own uniqueid; the `;1` half's for a Local `;2` half), when it is time to decide:
    ///
    /// * never while AMI feeds the state (AMI will say, within milliseconds; guessing would
    ///   make a one-channel call appear and vanish for every dialed leg);
    /// * without AMI, at once for a channel created in another state than `Down` (an incoming
    ///   leg); a channel created `Down` (an outgoing leg: dialed or originated) waits until it
    ///   is known not to be dialed by another channel (`force`: a `Dial` without caller, a
    ///   bridge, Stasis) or until it is `Up`. A dialed leg joins its caller's call at its `Dial`
    ///   event instead, which comes before the answer (but not always before `Ringing`:
    ///   scenario 14).
    fn settle(&mut self, id: &str, force: bool) {
        if self.ami_linked && !self.in_resync {
            return;
        }
        let Some(rec) = self.chans.get(id) else { return };
        let waits = rec.created_down && rec.ch.state != ChannelState::Up;
        if !rec.ch.linkedid.is_empty() || (!force && waits) {
            return;
        }
        let linkedid = match local_one_of(&rec.ch.name) {
            Some(_) => match self.partner_linkedid(&rec.ch.name) {
                Some(l) => l,
                // The `;1` half decides for both.
                None if self.names.contains_key(&local_one_of(&rec.ch.name).unwrap_or_default()) && !force => return,
                None => id.to_owned(),
            },
            None => id.to_owned(),
        };
        self.set_linkedid(id, &linkedid, false);
    }

    /// Settles every channel whose linkedid is unknown (AMI went away, or a resync).
    fn settle_all(&mut self) {
        let pending: Vec<String> = self
            .chans
            .iter()
            .filter(|(_, r)| r.ch.linkedid.is_empty())
            .map(|(id, _)| id.clone())
            .collect();
        // `;1` halves first, so `;2` halves follow them.
        let (ones, others): (Vec<String>, Vec<String>) = pending
            .into_iter()
            .partition(|id| self.chans.get(id).is_some_and(|r| local_two_of(&r.ch.name).is_some()));
        for id in ones.iter().chain(others.iter()) {
            self.settle(id, true);
        }
    }

    /// The AMI link went down (`false`) or up (`true`). While AMI feeds the state, channels
    /// first seen through ARI wait for AMI to name their linkedid; without AMI it is inferred.
    pub(super) fn set_ami_linked(&mut self, up: bool) {
        self.begin(None);
        self.ami_linked = up;
        if !up {
            self.settle_all();
        }
    }

    /// Moves a channel to another call. `from_ami`: the authoritative linkedid; otherwise an
    /// inference, ignored once AMI has spoken for the channel.
    pub(super) fn set_linkedid(&mut self, id: &str, linkedid: &str, from_ami: bool) {
        if linkedid.is_empty() {
            return;
        }
        let Some(rec) = self.chans.get_mut(id) else { return };
        if !from_ami && rec.linkedid_ami {
            return;
        }
        rec.linkedid_ami |= from_ami;
        if rec.ch.linkedid == linkedid {
            return;
        }
        let old = std::mem::replace(&mut Arc::make_mut(&mut rec.ch).linkedid, linkedid.to_owned());
        let two = local_two_of(&rec.ch.name);
        self.mark_chan(id);
        if let Some(call) = self.calls.get_mut(&old) {
            call.members.remove(id);
        }
        self.mark_call(&old);
        self.calls
            .entry(linkedid.to_owned())
            .or_default()
            .members
            .insert(id.to_owned());
        self.mark_call(linkedid);
        // A Local `;2` half waiting for its `;1` half follows it.
        if let Some(two_id) = two.and_then(|t| self.names.get(&t).cloned()) {
            if self.chans.get(&two_id).is_some_and(|r| r.ch.linkedid.is_empty()) {
                self.set_linkedid(&two_id, linkedid, false);
            }
        }
    }

    /// A channel is gone (AMI `Hangup`, ARI `ChannelDestroyed`): removed with everything that
    /// points at it, and remembered as dead.
    pub(super) fn destroy_channel(&mut self, id: &str, stamp: Stamp, cause: Option<i64>) {
        if id.is_empty() {
            return;
        }
        let when = stamp.ms.or(self.clock_ms);
        self.chan_tombs.insert(id, when);
        if self.forget_channel(id) {
            self.gone_chans.push(id.to_owned());
            self.gone_causes.insert(id.to_owned(), (cause, when));
        }
    }

    /// Removes a channel from the working state (bridge, call, name index), without marking it
    /// dead. Returns whether it existed.
    fn forget_channel(&mut self, id: &str) -> bool {
        let Some(rec) = self.chans.remove(id) else { return false };
        if let Some(bridge) = &rec.ch.bridge_id {
            if let Some(b) = self.bridges.get_mut(bridge) {
                b.members.remove(id);
            }
            self.mark_members(bridge);
        }
        if let Some(call) = self.calls.get_mut(&rec.ch.linkedid) {
            call.members.remove(id);
        }
        self.mark_call(&rec.ch.linkedid);
        if self.names.get(&rec.ch.name).is_some_and(|v| v == id) {
            self.names.remove(&rec.ch.name);
        }
        true
    }

    /// Applies `edit` to a known channel and marks it changed when `edit` says so.
    fn edit_chan(&mut self, id: &str, edit: impl FnOnce(&mut ChanRec) -> bool) {
        let seq = self.seq;
        let Some(rec) = self.chans.get_mut(id) else { return };
        rec.seq = seq;
        if edit(rec) {
            self.mark_chan(id);
        }
    }

    pub(super) fn hold(&mut self, id: &str, on: bool, stamp: Stamp) {
        self.edit_chan(id, |rec| {
            if !rec.st.hold.accepts(stamp) {
                return false;
            }
            rec.st.hold = stamp;
            set_field!(rec.ch, on_hold, on)
        });
    }

    pub(super) fn moh(&mut self, id: &str, on: bool) {
        self.edit_chan(id, |rec| set_field!(rec.ch, moh, on));
    }

    pub(super) fn mute(&mut self, id: &str, muted: Option<bool>) {
        self.edit_chan(id, |rec| set_field!(rec.ch, muted, muted));
    }

    pub(super) fn queue(&mut self, id: &str, queue: Option<&str>) {
        self.edit_chan(id, |rec| {
            if rec.ch.queue.as_deref() == queue {
                return false;
            }
            Arc::make_mut(&mut rec.ch).queue = queue.map(str::to_owned);
            true
        });
    }

    pub(super) fn stasis(&mut self, id: &str, app: Option<&str>) {
        if app.is_some() {
            self.settle(id, true);
        }
        self.edit_chan(id, |rec| {
            if rec.ch.stasis_app.as_deref() == app {
                return false;
            }
            Arc::make_mut(&mut rec.ch).stasis_app = app.map(str::to_owned);
            true
        });
    }

    pub(super) fn dtmf(&mut self, id: &str, digit: &str, src: Source) {
        if digit.is_empty() {
            return;
        }
        self.edit_chan(id, |rec| {
            if rec.dtmf_src != Source::None && rec.dtmf_src != src {
                return false;
            }
            rec.dtmf_src = src;
            let ch = Arc::make_mut(&mut rec.ch);
            ch.dtmf_count += digit.chars().count() as u64;
            let d = &mut ch.dtmf_received;
            d.push_str(digit);
            while d.chars().count() > MAX_DTMF_DIGITS {
                d.remove(0);
            }
            true
        });
    }

    /// Progress of a dial: `peer` was dialed by `caller` (if any) and is at `status`
    /// (`None` when the dial starts). With `infer_linkedid` (ARI), the peer joins the caller's
    /// call, as Asterisk does when it creates the outgoing leg.
    pub(super) fn dial(&mut self, caller: Option<&str>, peer: &str, status: Option<&str>, stamp: Stamp, infer: bool) {
        let caller = caller.filter(|c| !c.is_empty() && *c != peer);
        let status = status.filter(|s| !s.is_empty());
        self.edit_chan(peer, |rec| {
            let mut changed = false;
            if let Some(c) = caller {
                if rec.ch.dialed_by.as_deref() != Some(c) {
                    Arc::make_mut(&mut rec.ch).dialed_by = Some(c.to_owned());
                    changed = true;
                }
            }
            if rec.st.dial.accepts(stamp) {
                rec.st.dial = stamp;
                if rec.ch.dial_status.as_deref() != status {
                    Arc::make_mut(&mut rec.ch).dial_status = status.map(str::to_owned);
                    changed = true;
                }
            }
            changed
        });
        if !infer {
            return;
        }
        let Some(caller) = caller else {
            // Nobody dialed it: an originated channel starts its own call.
            self.settle(peer, true);
            return;
        };
        let Some(linkedid) = self.chans.get(caller).map(|c| c.ch.linkedid.clone()) else {
            return;
        };
        let two = self
            .chans
            .get(peer)
            .and_then(|p| local_two_of(&p.ch.name))
            .and_then(|two| self.names.get(&two).cloned());
        self.set_linkedid(peer, &linkedid, false);
        if let Some(two) = two {
            self.set_linkedid(&two, &linkedid, false);
        }
    }

    /// A transfer succeeded: the calls of these channels are marked transferred.
    pub(super) fn transferred(&mut self, ids: &[&str]) {
        for id in ids {
            let Some(linkedid) = self.chans.get(*id).map(|c| c.ch.linkedid.clone()) else {
                continue;
            };
            if let Some(call) = self.calls.get_mut(&linkedid) {
                if !call.transferred {
                    call.transferred = true;
                    self.mark_call(&linkedid);
                }
            }
        }
    }

    // ------------------------------------------------------------- bridges

    /// Applies the facts an event carries about a bridge, creating it if needed (unless
    /// destroyed; `create` as for channels). Returns whether it exists after.
    pub(super) fn bridge(&mut self, f: &BridgeFacts<'_>, stamp: Stamp, create: bool) -> bool {
        if f.id.is_empty() {
            return false;
        }
        if let Some(died) = self.bridge_tombs.get(f.id) {
            let when = stamp.ms.or_else(|| f.created_text.and_then(parse_ari_ms));
            if !(create && revives(when, died)) {
                return false;
            }
            self.bridge_tombs.remove(f.id);
        }
        if !self.bridges.contains_key(f.id) {
            self.insert_bridge(f.id);
        }
        let seq = self.seq;
        let Some(rec) = self.bridges.get_mut(f.id) else {
            return false;
        };
        rec.seq = seq;
        let mut changed = false;
        if let Some(tech) = f.technology {
            if rec.tech.accepts(stamp) {
                rec.tech = stamp;
                changed |= set_str!(rec.b, technology, tech);
            }
        }
        if let Some(class) = f.class {
            changed |= set_str!(rec.b, class, class);
        }
        if let Some(creator) = f.creator {
            changed |= set_str!(rec.b, creator, creator);
        }
        if let Some(name) = f.name {
            changed |= set_str!(rec.b, name, name);
        }
        if let Some(t) = f.bridge_type {
            if rec.b.bridge_type.as_deref() != Some(t) {
                Arc::make_mut(&mut rec.b).bridge_type = Some(t.to_owned());
                changed = true;
            }
        }
        if !rec.created_exact {
            if let Some(ms) = f.created_text.and_then(parse_ari_ms) {
                rec.created_exact = true;
                Arc::make_mut(&mut rec.b).created_at = ms_to_time(ms);
                changed = true;
            } else if let (Some(ms), None) = (f.created_ms, rec.b.created_at) {
                Arc::make_mut(&mut rec.b).created_at = ms_to_time(ms);
                changed = true;
            }
        }
        if changed {
            self.mark_bridge(f.id);
        }
        true
    }

    fn insert_bridge(&mut self, id: &str) {
        let b = Bridge {
            id: id.to_owned(),
            technology: String::new(),
            class: String::new(),
            bridge_type: None,
            creator: String::new(),
            name: String::new(),
            channels: Vec::new(),
            created_at: None,
        };
        self.bridges.insert(
            id.to_owned(),
            BridgeRec {
                b: Arc::new(b),
                members: BTreeSet::new(),
                tech: Stamp::NONE,
                created_exact: false,
                seq: self.seq,
                dirty: false,
            },
        );
        self.mark_bridge(id);
    }

    /// A channel entered a bridge (AMI `BridgeEnter`, ARI `ChannelEnteredBridge`). A channel
    /// is in one bridge at a time: entering moves it.
    pub(super) fn enter(&mut self, bridge: &str, id: &str, stamp: Stamp) {
        if bridge.is_empty() || self.bridge_tombs.get(bridge).is_some() || !self.chans.contains_key(id) {
            return;
        }
        if !self.bridges.contains_key(bridge) {
            self.insert_bridge(bridge);
        }
        self.settle(id, true);
        self.set_bridge(id, Some(bridge), stamp);
    }

    /// A channel left a bridge (AMI `BridgeLeave`, ARI `ChannelLeftBridge`).
    pub(super) fn leave(&mut self, bridge: &str, id: &str, stamp: Stamp) {
        let in_it = self
            .chans
            .get(id)
            .is_some_and(|c| c.ch.bridge_id.as_deref() == Some(bridge));
        if in_it {
            self.set_bridge(id, None, stamp);
        }
    }

    fn set_bridge(&mut self, id: &str, bridge: Option<&str>, stamp: Stamp) {
        let seq = self.seq;
        let Some(rec) = self.chans.get_mut(id) else { return };
        if !rec.st.bridge.accepts(stamp) {
            return;
        }
        rec.st.bridge = stamp;
        rec.seq = seq;
        if rec.ch.bridge_id.as_deref() == bridge {
            return;
        }
        let ch = Arc::make_mut(&mut rec.ch);
        let old = std::mem::replace(&mut ch.bridge_id, bridge.map(str::to_owned));
        if bridge.is_none() {
            ch.talking_to.clear();
        }
        self.mark_chan(id);
        if let Some(old) = old {
            if let Some(b) = self.bridges.get_mut(&old) {
                b.members.remove(id);
            }
            self.mark_members(&old);
        }
        if let Some(new) = bridge {
            if let Some(b) = self.bridges.get_mut(new) {
                b.members.insert(id.to_owned());
            }
            self.mark_members(new);
        }
    }

    /// A bridge was destroyed: its channels are in no bridge any more.
    pub(super) fn destroy_bridge(&mut self, id: &str, stamp: Stamp) {
        if id.is_empty() {
            return;
        }
        self.bridge_tombs.insert(id, stamp.ms.or(self.clock_ms));
        if self.forget_bridge(id) {
            self.gone_bridges.push(id.to_owned());
        }
    }

    fn forget_bridge(&mut self, id: &str) -> bool {
        let Some(rec) = self.bridges.remove(id) else {
            return false;
        };
        for member in &rec.members {
            if let Some(c) = self.chans.get_mut(member) {
                let ch = Arc::make_mut(&mut c.ch);
                ch.bridge_id = None;
                ch.talking_to.clear();
            }
            self.mark_chan(member);
        }
        true
    }

    /// Two bridges merged: the channels of `from` are now in `to`.
    pub(super) fn merge(&mut self, from: &str, to: &str, stamp: Stamp) {
        let members: Vec<String> = self
            .bridges
            .get(from)
            .map(|b| b.members.iter().cloned().collect())
            .unwrap_or_default();
        for m in members {
            self.enter(to, &m, stamp);
        }
    }

    /// Without AMI, the linkedid change of bridging is inferred: Asterisk gives every channel
    /// of a two-party bridge the oldest linkedid among them (scenario 27: `s27-2003` joins
    /// `s27-2002`'s call; 05 likewise). Conference (`softmix`) and holding bridges do not
    /// (scenario 10 keeps three calls), so only two-party technologies are considered.
    pub(super) fn infer_bridge_linkedid(&mut self, bridge: &str) {
        let Some(b) = self.bridges.get(bridge) else { return };
        if !matches!(b.b.technology.as_str(), "simple_bridge" | "native_rtp") || b.members.len() < 2 {
            return;
        }
        let mut best: Option<(i64, String)> = None;
        for m in &b.members {
            let Some(rec) = self.chans.get(m) else { continue };
            let l = &rec.ch.linkedid;
            if l.is_empty() {
                continue;
            }
            let age = self
                .chans
                .get(l)
                .and_then(|o| o.created_ms)
                .or(rec.created_ms)
                .unwrap_or(i64::MAX);
            if best.as_ref().is_none_or(|(a, _)| age < *a) {
                best = Some((age, l.clone()));
            }
        }
        let Some((_, oldest)) = best else { return };
        let members: Vec<String> = b.members.iter().cloned().collect();
        for m in members {
            self.set_linkedid(&m, &oldest, false);
        }
    }

    // ------------------------------------------------------- devices, hints

    pub(super) fn device(&mut self, device: &str, state: &str, stamp: Stamp) {
        if device.is_empty() {
            return;
        }
        let seq = self.seq;
        let value = DeviceStateValue::from(state);
        match self.devices.get_mut(device) {
            Some(rec) => {
                if !rec.stamp.accepts(stamp) {
                    return;
                }
                rec.stamp = stamp;
                rec.seq = seq;
                if rec.state == value {
                    return;
                }
                rec.state = value;
            }
            None => {
                self.devices.insert(
                    device.to_owned(),
                    DevRec {
                        state: value,
                        stamp,
                        seq,
                    },
                );
            }
        }
        if !self.dirty_devices.iter().any(|d| d == device) {
            self.dirty_devices.push(device.to_owned());
        }
    }

    pub(super) fn hint(&mut self, hint: Hint) {
        let key = (hint.exten.clone(), hint.context.clone());
        let seq = self.seq;
        match self.hints.get_mut(&key) {
            Some((old, s)) => {
                *s = seq;
                if *old == hint {
                    return;
                }
                *old = hint;
            }
            None => {
                self.hints.insert(key.clone(), (hint, seq));
            }
        }
        if !self.dirty_hints.contains(&key) {
            self.dirty_hints.push(key);
        }
    }

    // --------------------------------------------------------------- resync

    /// Replaces the state with a snapshot. See [`LiveState::resync`].
    pub(super) fn resync(&mut self, snap: &Snapshot) {
        self.begin(None);
        self.in_resync = true;
        self.resync_lists(snap);
        // Whatever the lists did not give a linkedid gets the inferred one.
        self.settle_all();
        self.in_resync = false;
    }

    fn resync_lists(&mut self, snap: &Snapshot) {
        let mark = snap.mark.map(|m| m.0);
        // Touched by an event after the mark, not by this resync itself (which runs under the
        // sequence number `begin` just took): a channel the resync rebuilt must still take
        // its bridge from the lists below.
        let own = self.seq;
        let live = move |seq: u64| mark.is_some_and(|m| seq > m && seq < own);
        let stamp = Stamp {
            ms: None,
            src: Source::Resync,
        };

        // What a partial snapshot cannot tell is kept from before: the linkedid without the AMI
        // list (ARI has none; AMI names it again with its next event), the bridge without any
        // bridge information.
        let kept: HashMap<String, (String, bool, Option<String>)> = self
            .chans
            .iter()
            .filter(|(_, r)| !live(r.seq))
            .map(|(id, r)| {
                (
                    id.clone(),
                    (r.ch.linkedid.clone(), r.linkedid_ami, r.ch.bridge_id.clone()),
                )
            })
            .collect();

        // Channels: the union of both lists, merged by id.
        if snap.ari_channels.is_some() || snap.ami_channels.is_some() {
            let mut target: BTreeMap<&str, (Option<&crate::ari::models::Channel>, Option<&AmiMessage>)> =
                BTreeMap::new();
            for c in snap.ari_channels.iter().flatten() {
                target.entry(c.id.as_str()).or_default().0 = Some(c);
            }
            for m in snap.ami_channels.iter().flatten() {
                if m.event() == Some("CoreShowChannel") {
                    if let Some(id) = m.get("Uniqueid").filter(|u| !u.is_empty()) {
                        target.entry(id).or_default().1 = Some(m);
                    }
                }
            }
            // Everything not touched since the mark is rebuilt from the snapshot alone, so that
            // the result is what a fresh start would build; what is absent is dead.
            let known: Vec<String> = self.chans.keys().cloned().collect();
            for id in known {
                if self.chans.get(&id).is_some_and(|r| !live(r.seq)) {
                    if target.contains_key(id.as_str()) {
                        self.forget_channel(&id);
                        self.dirty_chans.push(id);
                    } else {
                        self.destroy_channel(&id, Stamp::NONE, None);
                    }
                }
            }
            for (id, (ari, ami)) in &target {
                if self.chans.get(*id).is_some_and(|r| live(r.seq)) {
                    continue;
                }
                if let Some(m) = ami {
                    let block = super::ami::block(m, "");
                    if let Some(mut f) = super::ami::facts(&block) {
                        f.app = Some((
                            m.get("Application").unwrap_or(""),
                            m.get("ApplicationData").unwrap_or(""),
                        ));
                        self.channel(&f, stamp, true);
                    }
                }
                if let Some(c) = ari {
                    self.channel(&super::ari::facts(c), stamp, true);
                }
                if snap.ami_channels.is_none() {
                    if let Some((linkedid, from_ami, _)) = kept.get(*id) {
                        self.set_linkedid(id, linkedid, *from_ami);
                    }
                }
            }
            // Calls whose channels were all rebuilt forget what only events told (caller kept
            // after the originator died, transfer).
            let linkedids: Vec<String> = self.calls.keys().cloned().collect();
            for l in linkedids {
                let keep = self.calls.get(&l).is_some_and(|c| {
                    c.members
                        .iter()
                        .any(|m| self.chans.get(m).is_some_and(|r| live(r.seq) && r.ch.linkedid == l))
                });
                if !keep {
                    if let Some(c) = self.calls.get_mut(&l) {
                        c.caller = None;
                        c.transferred = false;
                        c.created_ms = None;
                    }
                }
                self.mark_call(&l);
            }
        }

        // Bridges and membership: from the ARI bridge list, else from the AMI `BridgeId`s.
        let mut membership: Option<HashMap<&str, &str>> = None;
        if let Some(bridges) = &snap.ari_bridges {
            let ids: BTreeSet<&str> = bridges.iter().map(|b| b.id.as_str()).collect();
            self.replace_bridges(&ids, &live);
            let mut map = HashMap::new();
            for b in bridges {
                if self.bridges.get(&b.id).is_some_and(|r| live(r.seq)) {
                    continue;
                }
                if self.bridge(&super::ari::bridge_facts(b), stamp, true) {
                    for c in &b.channels {
                        map.insert(c.as_str(), b.id.as_str());
                    }
                }
            }
            membership = Some(map);
        } else if let Some(list) = &snap.ami_channels {
            let mut map = HashMap::new();
            for m in list.iter().filter(|m| m.event() == Some("CoreShowChannel")) {
                if let (Some(id), Some(b)) = (m.get("Uniqueid"), m.get("BridgeId").filter(|b| !b.is_empty())) {
                    map.insert(id, b);
                }
            }
            let ids: BTreeSet<&str> = map.values().copied().collect();
            self.replace_bridges(&ids, &live);
            for id in &ids {
                if !self.bridges.get(*id).is_some_and(|r| live(r.seq)) {
                    self.bridge(
                        &BridgeFacts {
                            id,
                            ..Default::default()
                        },
                        stamp,
                        true,
                    );
                }
            }
            membership = Some(map);
        }
        if membership.is_none() && (snap.ari_channels.is_some() || snap.ami_channels.is_some()) {
            // Channels rebuilt without any bridge information stay where they were.
            for (id, (_, _, bridge)) in &kept {
                if let Some(b) = bridge.as_deref().filter(|b| self.bridges.contains_key(*b)) {
                    self.set_bridge(id, Some(b), stamp);
                }
            }
        }
        if let Some(map) = membership {
            let ids: Vec<String> = self.chans.keys().cloned().collect();
            for id in ids {
                if self.chans.get(&id).is_some_and(|r| live(r.seq)) {
                    continue;
                }
                match map.get(id.as_str()) {
                    Some(b) if self.bridges.contains_key(*b) => self.set_bridge(&id, Some(b), stamp),
                    _ => self.set_bridge(&id, None, stamp),
                }
            }
        }

        if let Some(list) = &snap.ami_device_states {
            let mut target: BTreeMap<&str, &str> = BTreeMap::new();
            for m in list.iter().filter(|m| m.event() == Some("DeviceStateChange")) {
                if let (Some(d), Some(s)) = (m.get("Device"), m.get("State")) {
                    target.insert(d, s);
                }
            }
            let known: Vec<String> = self.devices.keys().cloned().collect();
            for d in known {
                if !target.contains_key(d.as_str()) && self.devices.get(&d).is_some_and(|r| !live(r.seq)) {
                    self.devices.remove(&d);
                    self.gone_devices.push(d);
                }
            }
            for (d, s) in target {
                if !self.devices.get(d).is_some_and(|r| live(r.seq)) {
                    self.device(d, s, stamp);
                }
            }
        }

        if let Some(list) = &snap.ami_hints {
            let hints: Vec<Hint> = list
                .iter()
                .filter(|m| m.event() == Some("ExtensionStatus"))
                .filter_map(super::ami::hint_of)
                .collect();
            let keys: BTreeSet<(&str, &str)> = hints.iter().map(|h| (h.exten.as_str(), h.context.as_str())).collect();
            let known: Vec<(String, String)> = self.hints.keys().cloned().collect();
            for k in known {
                let absent = !keys.contains(&(k.0.as_str(), k.1.as_str()));
                if absent && self.hints.get(&k).is_some_and(|(_, seq)| !live(*seq)) {
                    self.hints.remove(&k);
                    self.gone_hints.push(k);
                }
            }
            for h in hints {
                let key = (h.exten.clone(), h.context.clone());
                if !self.hints.get(&key).is_some_and(|(_, seq)| live(*seq)) {
                    self.hint(h);
                }
            }
        }
    }

    /// Resync of the bridge set: bridges not touched since the mark are rebuilt from the
    /// snapshot; those absent from it are destroyed.
    fn replace_bridges(&mut self, ids: &BTreeSet<&str>, live: &dyn Fn(u64) -> bool) {
        let known: Vec<String> = self.bridges.keys().cloned().collect();
        for id in known {
            if self.bridges.get(&id).is_some_and(|r| !live(r.seq)) {
                if ids.contains(id.as_str()) {
                    self.forget_bridge(&id);
                    self.dirty_bridges.push(id);
                } else {
                    self.destroy_bridge(&id, Stamp::NONE);
                }
            }
        }
    }

    // --------------------------------------------------------------- publish

    /// Publishes what the applied event changed and collects the changes, in this order:
    /// channels gone, channels created/updated, bridges gone, bridges created/updated, calls,
    /// devices, hints.
    fn flush(&mut self, shared: &Shared) -> Vec<StateChange> {
        let mut out = std::mem::take(&mut self.out);
        if self.dirty_members.is_empty()
            && self.gone_chans.is_empty()
            && self.dirty_chans.is_empty()
            && self.gone_bridges.is_empty()
            && self.dirty_bridges.is_empty()
            && self.dirty_calls.is_empty()
            && self.gone_devices.is_empty()
            && self.dirty_devices.is_empty()
            && self.gone_hints.is_empty()
            && self.dirty_hints.is_empty()
        {
            return out;
        }
        // Membership -> bridge member lists and talking_to.
        for_each_taken!(self.dirty_members, |bid| {
            let Some(b) = self.bridges.get_mut(&bid) else { continue };
            let members: Vec<String> = b.members.iter().cloned().collect();
            if b.b.channels != members {
                Arc::make_mut(&mut b.b).channels = members.clone();
                if !b.dirty {
                    b.dirty = true;
                    self.dirty_bridges.push(bid.clone());
                }
            }
            for m in &members {
                let others: Vec<String> = members.iter().filter(|o| *o != m).cloned().collect();
                if let Some(c) = self.chans.get_mut(m) {
                    if c.ch.bridge_id.as_deref() == Some(bid.as_str()) && c.ch.talking_to != others {
                        Arc::make_mut(&mut c.ch).talking_to = others;
                        if !c.dirty {
                            c.dirty = true;
                            self.dirty_chans.push(m.clone());
                        }
                    }
                }
            }
        });

        for_each_taken!(self.gone_chans, |id| {
            let (cause, when) = self.gone_causes.remove(&id).unwrap_or_default();
            if !self.chans.contains_key(&id) {
                if let Some((_, mut old)) = shared.channels.remove(&id) {
                    let last = Arc::make_mut(&mut old);
                    last.hangup_cause = cause;
                    last.hungup_at = when.and_then(ms_to_time);
                    out.push(StateChange::ChannelGone(old));
                }
            }
        });
        for_each_taken!(self.dirty_chans, |id| {
            let Some(rec) = self.chans.get_mut(&id) else {
                // Forgotten by a resync and not rebuilt: it is gone.
                if let Some((_, old)) = shared.channels.remove(&id) {
                    out.push(StateChange::ChannelGone(old));
                }
                continue;
            };
            rec.dirty = false;
            let linkedid = rec.ch.linkedid.clone();
            publish(
                &shared.channels,
                id,
                &rec.ch,
                &mut out,
                StateChange::ChannelCreated,
                StateChange::ChannelUpdated,
            );
            self.mark_call(&linkedid);
        });

        for_each_taken!(self.gone_bridges, |id| {
            if !self.bridges.contains_key(&id) {
                if let Some((_, old)) = shared.bridges.remove(&id) {
                    out.push(StateChange::BridgeGone(old));
                }
            }
        });
        for_each_taken!(self.dirty_bridges, |id| {
            let Some(rec) = self.bridges.get_mut(&id) else {
                if let Some((_, old)) = shared.bridges.remove(&id) {
                    out.push(StateChange::BridgeGone(old));
                }
                continue;
            };
            rec.dirty = false;
            for m in &rec.members {
                if let Some(c) = self.chans.get(m) {
                    if let Some(call) = self.calls.get_mut(&c.ch.linkedid) {
                        if !call.dirty {
                            call.dirty = true;
                            self.dirty_calls.push(c.ch.linkedid.clone());
                        }
                    }
                }
            }
            publish(
                &shared.bridges,
                id,
                &rec.b,
                &mut out,
                StateChange::BridgeCreated,
                StateChange::BridgeUpdated,
            );
        });

        for_each_taken!(self.dirty_calls, |linkedid| {
            self.publish_call(linkedid, shared, &mut out);
        });

        for_each_taken!(self.gone_devices, |d| {
            if !self.devices.contains_key(&d) && shared.devices.remove(&d).is_some() {
                out.push(StateChange::DeviceGone(d));
            }
        });
        for_each_taken!(self.dirty_devices, |d| {
            if let Some(rec) = self.devices.get(&d) {
                let ds = DeviceState {
                    device: d.clone(),
                    state: rec.state.clone(),
                };
                if shared.devices.insert(d, ds.clone()).as_ref() != Some(&ds) {
                    out.push(StateChange::DeviceStateChanged(ds));
                }
            }
        });
        for_each_taken!(self.gone_hints, |k| {
            if !self.hints.contains_key(&k) {
                if let Some((_, old)) = shared.hints.remove(&k) {
                    out.push(StateChange::HintGone(old));
                }
            }
        });
        for_each_taken!(self.dirty_hints, |k| {
            if let Some((h, _)) = self.hints.get(&k) {
                if shared.hints.insert(k, h.clone()).as_ref() != Some(h) {
                    out.push(StateChange::HintChanged(h.clone()));
                }
            }
        });
        out
    }

    fn publish_call(&mut self, linkedid: String, shared: &Shared, out: &mut Vec<StateChange>) {
        let empty = self.calls.get(&linkedid).is_none_or(|c| c.members.is_empty());
        if empty {
            self.calls.remove(&linkedid);
            if let Some((_, old)) = shared.calls.remove(&linkedid) {
                let mut ended = (*old).clone();
                ended.state = CallState::HungUp;
                ended.callees.clear();
                ended.channels.clear();
                ended.bridges.clear();
                ended.talks.clear();
                out.push(StateChange::CallEnded(Arc::new(ended)));
            }
            return;
        }
        let Some(rec) = self.calls.get(&linkedid) else { return };
        let call = build_call(&linkedid, rec, &self.chans, &self.bridges);
        if let Some(rec) = self.calls.get_mut(&linkedid) {
            rec.dirty = false;
            if call.caller.is_some() {
                rec.caller.clone_from(&call.caller);
            }
            let min = rec.members.iter().filter_map(|m| self.chans.get(m)?.created_ms).min();
            rec.created_ms = match (rec.created_ms, min) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        let call = Arc::new(call);
        publish(
            &shared.calls,
            linkedid,
            &call,
            out,
            StateChange::CallCreated,
            StateChange::CallUpdated,
        );
    }
}

/// Inserts `new` under `id` and says what happened: created, or updated when it differs.
fn publish<T: PartialEq>(
    map: &DashMap<String, Arc<T>>,
    id: String,
    new: &Arc<T>,
    out: &mut Vec<StateChange>,
    created: fn(Arc<T>) -> StateChange,
    updated: fn(Arc<T>) -> StateChange,
) {
    match map.insert(id, new.clone()) {
        None => out.push(created(new.clone())),
        Some(old) if !Arc::ptr_eq(&old, new) && *old != **new => out.push(updated(new.clone())),
        Some(_) => {}
    }
}

fn party(rec: &ChanRec) -> CallParty {
    CallParty {
        channel_id: rec.ch.id.clone(),
        channel_name: rec.ch.name.clone(),
        endpoint: rec.ch.endpoint.clone(),
        party: rec.ch.caller.clone(),
        state: rec.ch.state.clone(),
        dial_status: rec.ch.dial_status.clone(),
    }
}

/// The call of a linkedid, from its live channels.
fn build_call(
    linkedid: &str,
    rec: &CallRec,
    chans: &HashMap<String, ChanRec>,
    bridges: &HashMap<String, BridgeRec>,
) -> Call {
    let members: Vec<&ChanRec> = rec.members.iter().filter_map(|m| chans.get(m)).collect();
    let caller = members
        .iter()
        .find(|c| c.ch.id == linkedid)
        .map(|c| party(c))
        .or_else(|| rec.caller.clone());
    let mut callees: Vec<&ChanRec> = members.iter().copied().filter(|c| c.ch.dialed_by.is_some()).collect();
    callees.sort_by(|a, b| (a.created_ms, &a.ch.id).cmp(&(b.created_ms, &b.ch.id)));
    let bridge_ids: BTreeSet<&str> = members.iter().filter_map(|c| c.ch.bridge_id.as_deref()).collect();
    let talks: Vec<Talk> = bridge_ids
        .iter()
        .filter_map(|b| bridges.get(*b))
        .filter(|b| b.members.len() >= 2)
        .map(|b| Talk {
            bridge_id: b.b.id.clone(),
            channels: b.members.iter().cloned().collect(),
        })
        .collect();
    let talking = !talks.is_empty();
    let on_hold = members.iter().any(|c| c.ch.on_hold) || (talking && members.iter().any(|c| c.ch.moh));
    let state = if talking {
        if on_hold {
            CallState::OnHold
        } else {
            CallState::Up
        }
    } else if members.iter().any(|c| c.ch.state == ChannelState::Ringing) {
        CallState::Ringing
    } else if members.iter().any(|c| c.ch.state == ChannelState::Up) {
        CallState::Up
    } else {
        CallState::Dialing
    };
    let created = members.iter().filter_map(|c| c.created_ms).min();
    let created = match (rec.created_ms, created) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    Call {
        linkedid: linkedid.to_owned(),
        state,
        caller,
        callees: callees.into_iter().map(party).collect(),
        channels: rec.members.iter().filter(|m| chans.contains_key(*m)).cloned().collect(),
        bridges: bridge_ids.into_iter().map(str::to_owned).collect(),
        talks,
        on_hold,
        transferred: rec.transferred,
        created_at: created.and_then(ms_to_time),
    }
}

fn set_party(ch: &mut Arc<Channel>, connected: bool, name: &str, number: &str) -> bool {
    let p = if connected { &ch.connected } else { &ch.caller };
    if p.name == name && p.number == number {
        return false;
    }
    let c = Arc::make_mut(ch);
    let p = if connected { &mut c.connected } else { &mut c.caller };
    name.clone_into(&mut p.name);
    number.clone_into(&mut p.number);
    true
}

/// Epoch milliseconds of an ARI timestamp (`2026-11-28T14:06:44.673+0000`). The format
/// Asterisk 22 writes is read without allocating (this runs for every ARI event); anything else
/// goes through [`parse_ari_timestamp`](crate::ari::parse_ari_timestamp).
pub(super) fn parse_ari_ms(text: &str) -> Option<i64> {
    fast_ari_ms(text).or_else(|| {
        let t = crate::ari::parse_ari_timestamp(text).ok()?;
        i64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok()
    })
}

fn fast_ari_ms(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() != 28 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' || b[16] != b':' || b[19] != b'.'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let mut v = 0i64;
        for &c in b.get(r)? {
            if !c.is_ascii_digit() {
                return None;
            }
            v = v * 10 + i64::from(c - b'0');
        }
        Some(v)
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, s, ms) = (num(11..13)?, num(14..16)?, num(17..19)?, num(20..23)?);
    let sign = match b[23] {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let off = sign * (num(24..26)? * 3600 + num(26..28)? * 60);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    // Days from civil (Howard Hinnant's algorithm).
    let (yy, m) = if mo <= 2 { (y - 1, mo + 9) } else { (y, mo - 3) };
    let era = yy.div_euclid(400);
    let yoe = yy - era * 400;
    let doy = (153 * m + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some((days * 86_400 + h * 3600 + mi * 60 + s - off) * 1000 + ms)
}

/// Everything readers see, and the writer behind its lock.
pub(super) struct Shared {
    channels: DashMap<String, Arc<Channel>>,
    bridges: DashMap<String, Arc<Bridge>>,
    calls: DashMap<String, Arc<Call>>,
    devices: DashMap<String, DeviceState>,
    hints: DashMap<(String, String), Hint>,
    writer: Mutex<Writer>,
    changes: broadcast::Sender<Arc<StateChange>>,
    /// Resyncs finished since the start.
    resyncs: std::sync::atomic::AtomicU64,
}

/// The live state of the PBX: channels, bridges, calls, device and hint states, built from the
/// AMI and ARI events (see the [module documentation](super) for which source says what).
///
/// A cheap `Clone` handle: every clone sees the same state. Applying an event is synchronous
/// and short (it never waits for a reader); reading never blocks the appliers.
#[derive(Clone)]
pub struct LiveState {
    shared: Arc<Shared>,
}

impl Default for LiveState {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for LiveState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveState").field("counts", &self.counts()).finish()
    }
}

impl LiveState {
    /// An empty state with the default change-stream capacity.
    pub fn new() -> Self {
        Self::with_change_capacity(DEFAULT_CHANGE_CAPACITY)
    }

    /// An empty state whose change stream holds `capacity` changes per slow subscriber.
    pub fn with_change_capacity(capacity: usize) -> Self {
        let (changes, _) = broadcast::channel(capacity.max(1));
        LiveState {
            shared: Arc::new(Shared {
                channels: DashMap::new(),
                bridges: DashMap::new(),
                calls: DashMap::new(),
                devices: DashMap::new(),
                hints: DashMap::new(),
                writer: Mutex::new(Writer::new()),
                changes,
                resyncs: std::sync::atomic::AtomicU64::new(0),
            }),
        }
    }

    fn writer(&self) -> MutexGuard<'_, Writer> {
        // A panic while applying cannot leave the maps unusable (each step keeps them
        // consistent), so a poisoned lock is taken over rather than propagated.
        self.shared
            .writer
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn finish(&self, w: &mut Writer) {
        let mut out = w.flush(&self.shared);
        if self.shared.changes.receiver_count() > 0 {
            for change in out.drain(..) {
                // Err only means every receiver was dropped meanwhile.
                let _ = self.shared.changes.send(Arc::new(change));
            }
        } else {
            out.clear();
        }
        w.out = out;
    }

    /// Applies one AMI message. Events that do not concern the live state (and responses,
    /// and the items of list actions, which carry an `ActionID`) are ignored, as are events
    /// missing the fields a fact needs.
    pub fn apply_ami(&self, msg: &AmiMessage) {
        let mut w = self.writer();
        super::ami::apply(&mut w, msg);
        self.finish(&mut w);
    }

    /// Applies one ARI event. Unknown events, and known ones that did not match their model,
    /// are ignored, except that a `ChannelDestroyed`/`BridgeDestroyed` whose id is readable
    /// still removes the channel/bridge (a ghost is worse than a missed detail).
    pub fn apply_ari(&self, event: &AriEvent) {
        let mut w = self.writer();
        super::ari::apply(&mut w, event);
        self.finish(&mut w);
    }

    /// Tells the state whether the AMI link is up. While it is (and from the first AMI event
    /// applied), the linkedid of a channel first seen through ARI is left unknown (`""`, the
    /// channel in no call) until AMI names it, a few milliseconds later. When the AMI client
    /// loses its link it must call `set_ami_link(false)`: the linkedids are then inferred from
    /// ARI alone (see the module documentation), including for the channels still waiting.
    pub fn set_ami_link(&self, up: bool) {
        let mut w = self.writer();
        w.set_ami_linked(up);
        self.finish(&mut w);
    }

    /// The current position in the applied events, to put in [`Snapshot::mark`] before the
    /// snapshot's lists are requested.
    pub fn mark(&self) -> Mark {
        Mark(self.writer().seq)
    }

    /// Replaces the state with what `snapshot` says, after a (re)connection.
    ///
    /// Channels, bridges, device states and hints absent from the snapshot are removed (with
    /// their `…Gone` change, and remembered as dead so a late event cannot bring them back);
    /// present ones are rebuilt from the snapshot alone, so the result is what a fresh start
    /// given the same snapshot builds (facts only events tell, such as hold, music on hold or
    /// who dialed whom, start over). Created/Updated changes are sent for what differs, then
    /// [`StateChange::Resynced`]. Whatever was touched by an event applied after
    /// [`Snapshot::mark`] is newer than the snapshot and kept as is.
    ///
    /// A part left `None` is not used: its kind of entries is left alone (devices without
    /// `ami_device_states`, hints without `ami_hints`, bridges without both `ari_bridges` and
    /// `ami_channels`), and what only it could tell about a rebuilt channel is kept from before
    /// (its linkedid without `ami_channels`, its bridge without any bridge information).
    pub fn resync(&self, snapshot: Snapshot) {
        let mut w = self.writer();
        w.resync(&snapshot);
        self.finish(&mut w);
        self.shared.resyncs.fetch_add(1, std::sync::atomic::Ordering::Release);
        if self.shared.changes.receiver_count() > 0 {
            let _ = self.shared.changes.send(Arc::new(StateChange::Resynced(self.counts())));
        }
    }

    /// How many resyncs finished since the start: whether the state has read Asterisk's lists
    /// yet (a subscriber that came late cannot wait for a `Resynced` change already sent).
    pub fn resyncs(&self) -> u64 {
        self.shared.resyncs.load(std::sync::atomic::Ordering::Acquire)
    }

    /// The change stream (see [`StateChange`]). Changes made before the call are not replayed:
    /// read the state after subscribing.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<StateChange>> {
        self.shared.changes.subscribe()
    }

    /// Every live channel, sorted by id.
    pub fn channels(&self) -> Vec<Channel> {
        let mut v: Vec<Channel> = self.shared.channels.iter().map(|e| (**e.value()).clone()).collect();
        v.sort_by(|a, b| a.id.cmp(&b.id));
        v
    }

    /// Every live channel as shared, in no order: a reader that only looks (`GET /calls`
    /// with thousands of channels) copies no channel.
    pub fn channels_shared(&self) -> Vec<Arc<Channel>> {
        self.shared.channels.iter().map(|e| e.value().clone()).collect()
    }

    /// One channel as shared.
    pub fn channel_shared(&self, id: &str) -> Option<Arc<Channel>> {
        self.shared.channels.get(id).map(|e| e.value().clone())
    }

    /// Bridge id -> class of every live bridge, without copying the bridges' members.
    pub fn bridge_classes(&self) -> HashMap<String, String> {
        self.shared
            .bridges
            .iter()
            .map(|e| (e.key().clone(), e.value().class.clone()))
            .collect()
    }

    /// One channel by id (uniqueid).
    pub fn channel(&self, id: &str) -> Option<Channel> {
        self.shared.channels.get(id).map(|e| (**e.value()).clone())
    }

    /// One channel by name (`PJSIP/2001-00000000`).
    pub fn channel_by_name(&self, name: &str) -> Option<Channel> {
        self.shared
            .channels
            .iter()
            .find(|e| e.value().name == name)
            .map(|e| (**e.value()).clone())
    }

    /// Every live bridge, sorted by id.
    pub fn bridges(&self) -> Vec<Bridge> {
        let mut v: Vec<Bridge> = self.shared.bridges.iter().map(|e| (**e.value()).clone()).collect();
        v.sort_by(|a, b| a.id.cmp(&b.id));
        v
    }

    /// One bridge by id.
    pub fn bridge(&self, id: &str) -> Option<Bridge> {
        self.shared.bridges.get(id).map(|e| (**e.value()).clone())
    }

    /// Every live call, sorted by linkedid.
    pub fn calls(&self) -> Vec<Call> {
        let mut v: Vec<Call> = self.shared.calls.iter().map(|e| (**e.value()).clone()).collect();
        v.sort_by(|a, b| a.linkedid.cmp(&b.linkedid));
        v
    }

    /// One call by linkedid.
    pub fn call(&self, linkedid: &str) -> Option<Call> {
        self.shared.calls.get(linkedid).map(|e| (**e.value()).clone())
    }

    /// The calls with a live channel of `endpoint` (`PJSIP/2001`, compared without regard to
    /// ASCII case), sorted by linkedid.
    pub fn calls_of_endpoint(&self, endpoint: &str) -> Vec<Call> {
        let linkedids: BTreeSet<String> = self
            .shared
            .channels
            .iter()
            .filter(|e| e.value().endpoint.eq_ignore_ascii_case(endpoint))
            .map(|e| e.value().linkedid.clone())
            .collect();
        linkedids.iter().filter_map(|l| self.call(l)).collect()
    }

    /// The state of a device (`PJSIP/2001`).
    pub fn device_state(&self, device: &str) -> Option<DeviceState> {
        self.shared.devices.get(device).map(|e| e.value().clone())
    }

    /// Every known device state, sorted by device.
    pub fn device_states(&self) -> Vec<DeviceState> {
        let mut v: Vec<DeviceState> = self.shared.devices.iter().map(|e| e.value().clone()).collect();
        v.sort_by(|a, b| a.device.cmp(&b.device));
        v
    }

    /// The state of the hint of `exten@context`.
    pub fn hint(&self, exten: &str, context: &str) -> Option<Hint> {
        self.shared
            .hints
            .get(&(exten.to_owned(), context.to_owned()))
            .map(|e| e.value().clone())
    }

    /// Every known hint, sorted by (context, exten).
    pub fn hints(&self) -> Vec<Hint> {
        let mut v: Vec<Hint> = self.shared.hints.iter().map(|e| e.value().clone()).collect();
        v.sort_by(|a, b| (&a.context, &a.exten).cmp(&(&b.context, &b.exten)));
        v
    }

    /// How many of each thing the state holds.
    pub fn counts(&self) -> Counts {
        Counts {
            channels: self.shared.channels.len(),
            bridges: self.shared.bridges.len(),
            calls: self.shared.calls.len(),
            devices: self.shared.devices.len(),
            hints: self.shared.hints.len(),
        }
    }

    /// A copy of the whole state.
    pub fn view(&self) -> StateView {
        StateView {
            channels: self.channels(),
            bridges: self.bridges(),
            calls: self.calls(),
            devices: self.device_states(),
            hints: self.hints(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_timestamp_matches_the_general_parser() {
        for text in [
            "2026-11-28T14:06:44.673+0000",
            "2026-11-28T16:06:44.673+0200",
            "1970-01-01T00:00:00.000+0000",
            "2000-02-29T23:59:59.999-0130",
        ] {
            let t = crate::ari::parse_ari_timestamp(text).expect("valid");
            let want = i64::try_from(t.unix_timestamp_nanos() / 1_000_000).expect("fits");
            assert_eq!(fast_ari_ms(text), Some(want), "{text}");
        }
        assert_eq!(parse_ari_ms("2026-11-28T14:06:44.673Z"), Some(1_795_874_804_673));
        assert_eq!(parse_ari_ms("garbage"), None);
        assert_eq!(fast_ari_ms("2026-13-28T14:06:44.673+0000"), None);
    }

    #[test]
    fn stamps_let_the_late_source_not_undo_a_newer_fact() {
        let ami = |ms| Stamp {
            ms: Some(ms),
            src: Source::Ami,
        };
        let ari = |ms| Stamp {
            ms: Some(ms),
            src: Source::Ari,
        };
        assert!(Stamp::NONE.accepts(ami(5)));
        assert!(ami(10).accepts(ami(3)), "one stream is ordered: its latest word wins");
        assert!(!ari(10).accepts(ami(9)), "older news from the other stream");
        assert!(ari(10).accepts(ami(10)), "same millisecond: last arrival wins");
        assert!(ari(10).accepts(Stamp {
            ms: None,
            src: Source::Ami
        }));
    }

    #[test]
    fn tombstones_are_bounded_and_forget_the_oldest() {
        let mut t = Tombs::new(3);
        for i in 0..5 {
            t.insert(&format!("c{i}"), Some(i));
        }
        assert_eq!(t.get("c0"), None);
        assert_eq!(t.get("c1"), None);
        assert_eq!(t.get("c4"), Some(Some(4)));
        t.remove("c3");
        t.insert("c3", Some(9));
        assert_eq!(t.get("c3"), Some(Some(9)));
        assert!(t.map.len() <= 3);
        assert!(revives(Some(10), Some(9)));
        assert!(!revives(Some(9), Some(9)));
        assert!(!revives(None, Some(9)));
    }

    #[test]
    fn local_halves() {
        assert_eq!(local_one_of("Local/1@x-0001;2").as_deref(), Some("Local/1@x-0001;1"));
        assert_eq!(local_two_of("Local/1@x-0001;1").as_deref(), Some("Local/1@x-0001;2"));
        assert_eq!(local_one_of("PJSIP/2001-0001"), None);
        assert_eq!(local_two_of("PJSIP/x;1"), None);
    }
}
