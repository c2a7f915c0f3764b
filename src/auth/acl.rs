//! ACL matching engine of accent-auth.
//!
//! Every authenticated request ends up asking one question: does the token's
//! granted ACL cover the access string the endpoint requires (for example
//! `confd.users.42.read`)? This module answers it.
//!
//! # Syntax of a granted entry
//!
//! An access string is a list of segments separated by `.`. A granted entry
//! is the same thing with a few special forms:
//!
//! * `*` matches any run of characters inside **one** segment. The run may be
//!   empty. It never matches `.` (so it cannot reach into the next segment)
//!   and never matches `#`.
//! * `#` matches anything at all, across any number of segments, including
//!   nothing.
//! * a segment that is exactly `me` matches `me` or the token's `auth_id`;
//!   a segment that is exactly `my_session` matches `my_session` or the
//!   token's session uuid. Only whole segments are rewritten: `mee` or `me*`
//!   stay literal.
//! * everything else is literal, and the whole entry must match the whole
//!   required access (anchored at both ends).
//!
//! An entry that starts with `!` is *negative*: if any negative entry matches,
//! access is denied, whatever the positive entries say. Otherwise access is
//! granted when a positive entry matches, and denied when none does.
//!
//! Wazo renamed most `*.edit` ACLs to `*.update` while Accent kept `.edit`, and
//! clients of both exist. So a required access ending in `.edit` is also
//! checked as the same string ending in `.update`, and the other way round:
//! a grant of either spelling allows it, and a negative entry matching either
//! spelling denies it.
//!
//! # Why not regular expressions
//!
//! The reference implementation (Python `AccessCheck`) turns each entry into a
//! regex. That is exactly the language described above, but compiling regexes
//! per token and running them per entry on every request is wasteful. Here
//! each entry is compiled once per token into a short list of [`Token`]s
//! (merged literal runs and wildcards), and matching is a dynamic program over
//! "which positions of the required string can the first *k* tokens end at".
//! That costs O(tokens × length) in the worst case, cannot blow up
//! exponentially like a naive backtracking glob matcher (`*a*a*a*b`), and
//! uses a fixed buffer on the stack for ordinary access strings, so a check
//! normally allocates nothing.
//!
//! # Deliberate differences from the Python regex
//!
//! The tests compare this matcher with a regex oracle built as the reference
//! describes; the few places where the reference regex has accidental
//! behaviour are pinned down here instead of being copied:
//!
//! * `auth_id` and the session uuid are taken literally. The reference pastes
//!   them into the regex unescaped; uuids contain nothing special, so this
//!   only matters for odd ids, where literal is the only sane reading.
//! * An empty `auth_id` (or session uuid) disables the rewrite instead of
//!   producing `(me|)`, which would let `users.me.x` grant `users..x`.
//! * `#` also matches a newline. In the reference, `#` becomes `.*?`, and the
//!   regex `.` skips `\n` while `*` (`[^.#]`) does not; a newline smuggled
//!   into a path parameter could then slip past a negative `!x.#` while still
//!   being granted by a positive `x.*`. "Anything" is the documented meaning.

use std::borrow::Cow;

/// Escape a value before it is substituted into a required-ACL template.
///
/// Path parameters are pasted into templates such as
/// `calld.users.me.calls.{call_id}.delete`. A value containing `.` would add
/// segments to the required access and could line up with a grant it was
/// never meant to match, so, like the reference server, every `.` becomes `_`.
/// Values without a dot are returned borrowed, which is the common case.
pub fn escape_param(value: &str) -> Cow<'_, str> {
    if value.contains('.') {
        Cow::Owned(value.replace('.', "_"))
    } else {
        Cow::Borrowed(value)
    }
}

/// Checks required accesses against the ACL of one token.
///
/// Build it once when the token is loaded (it compiles every entry) and keep
/// it next to the token; it owns all its data, so it is `Send + Sync` and can
/// be shared through an `Arc` or cloned.
#[derive(Debug, Clone)]
pub struct AccessCheck {
    identity: Identity,
    positive: Box<[Pattern]>,
    negative: Box<[Pattern]>,
}

impl AccessCheck {
    /// Compile `acl` for a token whose user is `auth_id` and whose session is
    /// `session_uuid`.
    ///
    /// Never fails: every string is a valid entry (at worst one that matches
    /// a single literal access). A lone `!` is a negative entry that matches
    /// only the empty access string.
    pub fn new(auth_id: &str, session_uuid: &str, acl: &[String]) -> Self {
        let identity = Identity {
            auth_id: auth_id.as_bytes().into(),
            session_uuid: session_uuid.as_bytes().into(),
        };
        let mut positive = Vec::new();
        let mut negative = Vec::new();
        for entry in acl {
            match entry.strip_prefix('!') {
                Some(rest) => negative.push(Pattern::compile(rest, &identity)),
                None => positive.push(Pattern::compile(entry, &identity)),
            }
        }
        Self {
            identity,
            positive: positive.into_boxed_slice(),
            negative: negative.into_boxed_slice(),
        }
    }

    /// Whether the ACL grants `required`.
    ///
    /// Negative entries are consulted first and win, so a broad grant such as
    /// `confd.#` can be narrowed with `!confd.users.*.delete` regardless of
    /// the order of the entries. See the module documentation for the
    /// `.edit`/`.update` aliasing.
    pub fn matches_required_access(&self, required: &str) -> bool {
        let subjects = Subject::with_verb_alias(required);
        let mut scratch = Scratch::new();
        let mut any_matches = |patterns: &[Pattern]| {
            subjects.iter().flatten().any(|subject| {
                patterns
                    .iter()
                    .any(|pattern| pattern.is_match(&self.identity, *subject, &mut scratch))
            })
        };
        if any_matches(&self.negative) {
            return false;
        }
        any_matches(&self.positive)
    }

    /// Whether the owner of this ACL may add `access` to a policy or user.
    ///
    /// Nobody may hand out more than they hold, so a positive access must be
    /// granted to the caller. A negative access (`!x`) only ever takes rights
    /// away, so adding one is always allowed.
    pub fn may_add_access(&self, access: &str) -> bool {
        access.starts_with('!') || self.matches_required_access(access)
    }

    /// Whether the owner of this ACL may remove `access` from a policy or
    /// user.
    ///
    /// Removing a negative entry `!x` widens what its holder can do exactly
    /// as far as `x`, and removing `x` touches the `x` right, so in both
    /// cases the caller must hold `x` itself.
    pub fn may_remove_access(&self, access: &str) -> bool {
        let positive = access.strip_prefix('!').unwrap_or(access);
        self.matches_required_access(positive)
    }
}

/// The two values a `me` / `my_session` segment may stand for.
#[derive(Debug, Clone)]
struct Identity {
    auth_id: Box<[u8]>,
    session_uuid: Box<[u8]>,
}

/// One element of a compiled entry.
///
/// Matching works on bytes: every literal is valid UTF-8, so a literal can
/// only match starting on a character boundary, and a wildcard's run always
/// ends either before a literal, at the end of the string or before another
/// wildcard. The accepted strings are therefore exactly those of a
/// character-based matcher.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    /// Bytes that must appear as they are (dots between segments included).
    Literal(Box<[u8]>),
    /// `*`: any run of bytes other than `.` and `#`.
    Star,
    /// `#`: any run of bytes.
    Hash,
    /// A whole `me` segment: `me` or the token's `auth_id`.
    MeSegment,
    /// A whole `my_session` segment: `my_session` or the session uuid.
    SessionSegment,
}

/// A compiled granted entry (without its `!`).
#[derive(Debug, Clone)]
struct Pattern {
    tokens: Box<[Token]>,
    /// Shortest string the pattern can match; rejects most entries for free.
    min_len: usize,
}

const ME: &[u8] = b"me";
const MY_SESSION: &[u8] = b"my_session";

impl Pattern {
    fn compile(entry: &str, identity: &Identity) -> Self {
        let mut tokens = Vec::new();
        let mut literal = Vec::new();
        for (index, segment) in entry.split('.').enumerate() {
            if index > 0 {
                literal.push(b'.');
            }
            // An empty id would turn the segment into "me or nothing", so the
            // rewrite only applies when there is something to rewrite to.
            if segment.as_bytes() == ME && !identity.auth_id.is_empty() {
                flush_literal(&mut tokens, &mut literal);
                tokens.push(Token::MeSegment);
                continue;
            }
            if segment.as_bytes() == MY_SESSION && !identity.session_uuid.is_empty() {
                flush_literal(&mut tokens, &mut literal);
                tokens.push(Token::SessionSegment);
                continue;
            }
            for &byte in segment.as_bytes() {
                match byte {
                    b'*' => {
                        flush_literal(&mut tokens, &mut literal);
                        push_wildcard(&mut tokens, Token::Star);
                    }
                    b'#' => {
                        flush_literal(&mut tokens, &mut literal);
                        push_wildcard(&mut tokens, Token::Hash);
                    }
                    _ => literal.push(byte),
                }
            }
        }
        flush_literal(&mut tokens, &mut literal);

        let min_len = tokens
            .iter()
            .map(|token| match token {
                Token::Literal(bytes) => bytes.len(),
                Token::Star | Token::Hash => 0,
                Token::MeSegment => ME.len().min(identity.auth_id.len()),
                Token::SessionSegment => MY_SESSION.len().min(identity.session_uuid.len()),
            })
            .sum();
        Self {
            tokens: tokens.into_boxed_slice(),
            min_len,
        }
    }

    /// Whether the whole of `subject` matches this pattern.
    ///
    /// `cur[i]` holds "the tokens seen so far can match exactly the first `i`
    /// bytes"; each token maps that row to the next one in one linear pass.
    fn is_match(&self, identity: &Identity, subject: Subject<'_>, scratch: &mut Scratch) -> bool {
        let len = subject.len();
        if len < self.min_len {
            return false;
        }
        // Cheap anchored checks first: nearly every entry starts with a
        // service name, so most non-matching entries stop here.
        if let Some(Token::Literal(first)) = self.tokens.first() {
            if !subject.has_at(0, first) {
                return false;
            }
        }
        if let Some(Token::Literal(last)) = self.tokens.last() {
            if !subject.ends_with(last) {
                return false;
            }
        }

        let (mut cur, mut next) = scratch.rows(len + 1);
        cur.fill(false);
        if let Some(start) = cur.first_mut() {
            *start = true;
        }
        // Lowest position set in `cur`: nothing below it can become reachable.
        let mut low = 0;
        for token in self.tokens.iter() {
            next.fill(false);
            let rows = (&*cur, &mut *next);
            match token {
                Token::Literal(bytes) => step_literal(rows, low, subject, bytes),
                Token::Star => step_star(rows, low, subject),
                Token::Hash => step_hash(rows, low),
                Token::MeSegment => {
                    step_literal(rows, low, subject, ME);
                    step_literal((&*cur, &mut *next), low, subject, &identity.auth_id);
                }
                Token::SessionSegment => {
                    step_literal(rows, low, subject, MY_SESSION);
                    step_literal((&*cur, &mut *next), low, subject, &identity.session_uuid);
                }
            }
            match next.iter().position(|&reached| reached) {
                Some(position) => low = position,
                None => return false,
            }
            std::mem::swap(&mut cur, &mut next);
        }
        cur.get(len).copied().unwrap_or(false)
    }
}

/// Appends the pending literal bytes, if any, as one token.
fn flush_literal(tokens: &mut Vec<Token>, literal: &mut Vec<u8>) {
    if !literal.is_empty() {
        tokens.push(Token::Literal(std::mem::take(literal).into_boxed_slice()));
    }
}

/// Appends a wildcard, folding runs of wildcards into one.
///
/// `**` means the same as `*`, and a `#` next to `*` or `#` means the same as
/// `#` alone (it already matches whatever they could), so entries such as
/// `a.*#*#` cost one token.
fn push_wildcard(tokens: &mut Vec<Token>, wildcard: Token) {
    match (tokens.last(), &wildcard) {
        (Some(Token::Hash), _) | (Some(Token::Star), Token::Star) => {}
        (Some(Token::Star), _) => {
            tokens.pop();
            tokens.push(Token::Hash);
        }
        _ => tokens.push(wildcard),
    }
}

/// Every position reached by `cur` followed by `bytes`.
fn step_literal((cur, next): (&[bool], &mut [bool]), low: usize, subject: Subject<'_>, bytes: &[u8]) {
    let last_start = match subject.len().checked_sub(bytes.len()) {
        Some(last_start) => last_start,
        None => return,
    };
    for (start, _) in cur
        .iter()
        .enumerate()
        .take(last_start + 1)
        .skip(low)
        .filter(|(_, &reached)| reached)
    {
        if subject.has_at(start, bytes) {
            if let Some(end) = next.get_mut(start + bytes.len()) {
                *end = true;
            }
        }
    }
}

/// Every position reached by `cur` followed by bytes other than `.` and `#`.
fn step_star((cur, next): (&[bool], &mut [bool]), low: usize, subject: Subject<'_>) {
    let mut reached = false;
    for (position, (&here, slot)) in cur.iter().zip(next.iter_mut()).enumerate().skip(low) {
        // The run may go on to `position` if it reached `position - 1` and
        // the byte in between may be part of a segment.
        let extends = reached
            && position
                .checked_sub(1)
                .and_then(|previous| subject.byte(previous))
                .is_some_and(|byte| byte != b'.' && byte != b'#');
        reached = here || extends;
        *slot = reached;
    }
}

/// Every position at or after one reached by `cur`.
fn step_hash((cur, next): (&[bool], &mut [bool]), low: usize) {
    let reached = cur.get(low).copied().unwrap_or(false);
    if reached {
        // `low` is the first reached position, so everything after it is
        // reachable.
        next.iter_mut().skip(low).for_each(|slot| *slot = true);
    }
}

/// The string being matched, seen as `head` followed by `tail`.
///
/// Two parts let the `.edit` → `.update` alias be checked without building a
/// new string: the alias is the original minus `edit`, followed by `update`.
#[derive(Debug, Clone, Copy)]
struct Subject<'a> {
    head: &'a [u8],
    tail: &'a [u8],
}

impl<'a> Subject<'a> {
    fn new(text: &'a str) -> Self {
        Self {
            head: text.as_bytes(),
            tail: &[],
        }
    }

    /// `required` itself, plus its other verb spelling when it ends in
    /// `.edit` or `.update`.
    fn with_verb_alias(required: &'a str) -> [Option<Self>; 2] {
        let bytes = required.as_bytes();
        let alias = [
            (b"edit".as_slice(), b"update".as_slice()),
            (b"update".as_slice(), b"edit".as_slice()),
        ]
        .into_iter()
        .find_map(|(verb, other)| {
            let stem = bytes.strip_suffix(verb)?;
            stem.ends_with(b".").then_some(Self {
                head: stem,
                tail: other,
            })
        });
        [Some(Self::new(required)), alias]
    }

    fn len(&self) -> usize {
        self.head.len() + self.tail.len()
    }

    fn byte(&self, index: usize) -> Option<u8> {
        match index.checked_sub(self.head.len()) {
            None => self.head.get(index).copied(),
            Some(in_tail) => self.tail.get(in_tail).copied(),
        }
    }

    /// Whether `bytes` occurs at `start`.
    fn has_at(&self, start: usize, bytes: &[u8]) -> bool {
        match start.checked_sub(self.head.len()) {
            Some(in_tail) => self.tail.get(in_tail..).is_some_and(|rest| rest.starts_with(bytes)),
            None => {
                let in_head = self.head.get(start..).unwrap_or_default();
                let split = in_head.len().min(bytes.len());
                let (from_head, from_tail) = bytes.split_at(split);
                in_head.starts_with(from_head) && self.tail.starts_with(from_tail)
            }
        }
    }

    fn ends_with(&self, bytes: &[u8]) -> bool {
        self.len()
            .checked_sub(bytes.len())
            .is_some_and(|start| self.has_at(start, bytes))
    }
}

/// Room for the two rows of the matcher.
///
/// Access strings are short, so the rows normally live in a fixed array on
/// the stack; only a required access longer than [`INLINE_ROW`] bytes falls
/// back to the heap.
struct Scratch {
    inline: [bool; 2 * INLINE_ROW],
    heap: Vec<bool>,
}

/// Longest row (access length + 1) kept on the stack.
const INLINE_ROW: usize = 256;

impl Scratch {
    fn new() -> Self {
        Self {
            inline: [false; 2 * INLINE_ROW],
            heap: Vec::new(),
        }
    }

    /// Two rows of `len` cells each.
    fn rows(&mut self, len: usize) -> (&mut [bool], &mut [bool]) {
        let buffer: &mut [bool] = if len <= INLINE_ROW {
            &mut self.inline[..2 * len]
        } else {
            if self.heap.len() < 2 * len {
                self.heap.resize(2 * len, false);
            }
            &mut self.heap[..2 * len]
        };
        buffer.split_at_mut(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use regex::Regex;

    const USER: &str = "9b5e3c1e-user";
    const SESSION: &str = "4f0c2d7a-session";

    fn check(acl: &[&str]) -> AccessCheck {
        let acl: Vec<String> = acl.iter().map(|entry| entry.to_string()).collect();
        AccessCheck::new(USER, SESSION, &acl)
    }

    fn allows(acl: &[&str], required: &str) -> bool {
        check(acl).matches_required_access(required)
    }

    #[test]
    fn hash_matches_across_segments() {
        assert!(allows(&["confd.#"], "confd.users.read"));
        assert!(allows(&["confd.#"], "confd.users.42.read"));
        assert!(allows(&["confd.#"], "confd."));
        assert!(!allows(&["confd.#"], "confd"));
        assert!(!allows(&["confd.#"], "confdx.users.read"));
        assert!(!allows(&["confd.#"], "auth.confd.read"));
    }

    #[test]
    fn lone_hash_matches_everything() {
        for required in ["", ".", "a", "confd.users.1.read", "#", "é.日本", "a\nb"] {
            assert!(allows(&["#"], required), "{required:?}");
        }
    }

    #[test]
    fn hash_in_the_middle_of_an_entry() {
        assert!(allows(&["a.#.read"], "a.b.c.read"));
        assert!(allows(&["a.#.read"], "a..read"));
        assert!(!allows(&["a.#.read"], "a.read"));
        assert!(allows(&["a#b"], "ab"));
        assert!(allows(&["a#b"], "a.x.b"));
        assert!(!allows(&["a#b"], "a.x.bc"));
    }

    #[test]
    fn star_matches_within_one_segment() {
        assert!(allows(&["confd.users.*"], "confd.users.read"));
        assert!(allows(&["confd.users.*"], "confd.users."));
        assert!(!allows(&["confd.users.*"], "confd.users.1.read"));
        assert!(allows(&["confd.users.*.read"], "confd.users.1.read"));
        assert!(!allows(&["confd.users.*.read"], "confd.users.1.2.read"));
    }

    #[test]
    fn star_can_be_part_of_a_segment() {
        assert!(allows(&["a.b*"], "a.b"));
        assert!(allows(&["a.b*"], "a.bcd"));
        assert!(!allows(&["a.b*"], "a.cb"));
        assert!(!allows(&["a.b*"], "a.bc.d"));
        assert!(allows(&["a.*b"], "a.cb"));
        assert!(allows(&["a.x*y*z"], "a.xaaybbz"));
        assert!(!allows(&["a.x*y*z"], "a.xaay.bz"));
    }

    #[test]
    fn star_never_matches_a_hash_character() {
        assert!(!allows(&["a.*"], "a.#"));
        assert!(!allows(&["a.*"], "a.x#y"));
        assert!(allows(&["a.#"], "a.#"));
    }

    #[test]
    fn star_and_hash_match_unicode() {
        assert!(allows(&["a.*"], "a.日本"));
        assert!(allows(&["a.é*"], "a.éé"));
        assert!(!allows(&["a.*"], "a.日.本"));
        assert!(allows(&["a.#"], "a.日.本"));
        assert!(!allows(&["a.é"], "a.e"));
    }

    #[test]
    fn matching_is_anchored() {
        assert!(allows(&["confd.users.read"], "confd.users.read"));
        assert!(!allows(&["confd.users.read"], "confd.users.read.x"));
        assert!(!allows(&["confd.users.read"], "xconfd.users.read"));
        assert!(!allows(&["confd.users.read"], "confd.users"));
        assert!(!allows(&["a.*"], "b.a.x"));
    }

    #[test]
    fn me_segment_matches_me_or_own_auth_id() {
        let acl = ["auth.users.me.password.edit"];
        assert!(allows(&acl, "auth.users.me.password.edit"));
        assert!(allows(&acl, &format!("auth.users.{USER}.password.edit")));
        assert!(!allows(&acl, "auth.users.someone-else.password.edit"));
        assert!(!allows(&acl, "auth.users..password.edit"));
    }

    #[test]
    fn own_auth_id_in_a_grant_matches_only_itself() {
        // The rewrite is on the granted side only: a grant spelled with the
        // uuid does not cover an endpoint that literally requires `me`.
        let acl = [format!("auth.users.{USER}.tokens.read")];
        let check = AccessCheck::new(USER, SESSION, &acl);
        assert!(check.matches_required_access(&format!("auth.users.{USER}.tokens.read")));
        assert!(!check.matches_required_access("auth.users.me.tokens.read"));
    }

    #[test]
    fn me_is_rewritten_only_as_a_whole_segment() {
        assert!(allows(&["me"], "me"));
        assert!(allows(&["me"], USER));
        assert!(allows(&["me.x"], &format!("{USER}.x")));
        assert!(allows(&["x.me"], &format!("x.{USER}")));
        assert!(!allows(&["x.mee"], &format!("x.{USER}e")));
        assert!(allows(&["x.me*"], "x.mex"));
        assert!(!allows(&["x.me*"], &format!("x.{USER}")));
        assert!(!allows(&["x.ame"], &format!("x.a{USER}")));
    }

    #[test]
    fn auth_id_is_taken_literally() {
        let acl = vec!["x.me.y".to_string()];
        let odd = AccessCheck::new("a*b.c", SESSION, &acl);
        assert!(odd.matches_required_access("x.a*b.c.y"));
        assert!(!odd.matches_required_access("x.aZb.c.y"));
        assert!(!odd.matches_required_access("x.a*bxc.y"));
    }

    #[test]
    fn empty_ids_disable_the_rewrite() {
        let acl = vec!["x.me.y".to_string(), "s.my_session".to_string()];
        let anonymous = AccessCheck::new("", "", &acl);
        assert!(anonymous.matches_required_access("x.me.y"));
        assert!(!anonymous.matches_required_access("x..y"));
        assert!(anonymous.matches_required_access("s.my_session"));
        assert!(!anonymous.matches_required_access("s."));
    }

    #[test]
    fn my_session_segment_matches_own_session() {
        let acl = ["auth.users.me.sessions.my_session.delete"];
        assert!(allows(&acl, "auth.users.me.sessions.my_session.delete"));
        assert!(allows(&acl, &format!("auth.users.{USER}.sessions.{SESSION}.delete")));
        assert!(!allows(&acl, "auth.users.me.sessions.other.delete"));
        assert!(!allows(&acl, &format!("auth.users.me.sessions.{USER}.delete")));
    }

    #[test]
    fn negative_entries_win_in_any_order() {
        for acl in [
            ["confd.#", "!confd.users.*.delete"],
            ["!confd.users.*.delete", "confd.#"],
        ] {
            assert!(allows(&acl, "confd.users.1.read"));
            assert!(!allows(&acl, "confd.users.1.delete"));
        }
        assert!(!allows(&["#", "!#"], "anything"));
        assert!(!allows(&["a.me", "!a.me"], &format!("a.{USER}")));
    }

    #[test]
    fn negative_entries_alone_grant_nothing() {
        assert!(!allows(&["!confd.users.read"], "confd.users.1.read"));
        assert!(!allows(&["!confd.users.read"], "confd.users.read"));
    }

    #[test]
    fn empty_acl_denies_everything() {
        assert!(!allows(&[], ""));
        assert!(!allows(&[], "confd.users.read"));
    }

    #[test]
    fn edit_and_update_are_the_same_verb() {
        assert!(allows(&["confd.users.*.edit"], "confd.users.1.update"));
        assert!(allows(&["confd.users.*.update"], "confd.users.1.edit"));
        assert!(allows(&["x.up*"], "x.edit"));
        assert!(!allows(&["x.#", "!x.update"], "x.edit"));
        assert!(!allows(&["x.#", "!x.edit"], "x.update"));
        assert!(allows(&["x.#", "!x.edit"], "x.read"));
        assert!(allows(&[".update"], ".edit"));
    }

    #[test]
    fn verb_alias_needs_a_whole_last_segment() {
        assert!(!allows(&["x.update"], "xedit"));
        assert!(!allows(&["x.update"], "x_edit"));
        assert!(!allows(&["x.update"], "x.reedit"));
        assert!(!allows(&["x.update.y"], "x.edit.y"));
        assert!(!allows(&["update"], "edit"));
    }

    #[test]
    fn may_add_access_requires_holding_it() {
        let check = check(&["confd.#", "auth.users.me.read"]);
        assert!(check.may_add_access("confd.users.read"));
        assert!(check.may_add_access("confd.#"));
        assert!(check.may_add_access("auth.users.me.read"));
        assert!(check.may_add_access(&format!("auth.users.{USER}.read")));
        assert!(!check.may_add_access("auth.users.other.read"));
        assert!(!check.may_add_access("#"));
        assert!(!check.may_add_access("auth.#"));
        assert!(check.may_add_access("!auth.#"));
        assert!(check.may_add_access("!"));
    }

    #[test]
    fn may_remove_access_requires_holding_the_positive_form() {
        let check = check(&["confd.#"]);
        assert!(check.may_remove_access("confd.users.read"));
        assert!(check.may_remove_access("!confd.users.read"));
        assert!(!check.may_remove_access("auth.users.read"));
        assert!(!check.may_remove_access("!auth.users.read"));
        assert!(!check.may_remove_access("!"));
        assert!(!check.may_remove_access("!!confd.x"));
    }

    #[test]
    fn escape_param_replaces_dots() {
        assert_eq!(escape_param("a.b.c"), "a_b_c");
        assert_eq!(escape_param("..é."), "__é_");
        assert!(matches!(escape_param("a.b"), Cow::Owned(_)));
        assert!(matches!(escape_param("abc"), Cow::Borrowed("abc")));
        assert!(matches!(escape_param(""), Cow::Borrowed("")));
    }

    #[test]
    fn escaped_param_cannot_add_segments() {
        let acl = ["calld.users.me.calls.*.delete"];
        let required = format!("calld.users.me.calls.{}.delete", escape_param("1.2"));
        assert!(allows(&acl, &required));
        assert!(!allows(&acl, "calld.users.me.calls.1.2.delete"));
    }

    #[test]
    fn odd_entries_do_not_panic() {
        let entries = [
            "",
            "!",
            "!!",
            "*",
            "**",
            "#",
            "##",
            "*#*",
            "#*#",
            ".",
            "..",
            "!.",
            "me",
            "!me",
            "my_session",
            "é*#.日本",
            "\n",
            "a.**.b",
            "a.##.b",
        ];
        let requireds = [
            "", "!", ".", "..", "*", "#", "me", "é", "日本.x", "a.b", "\n", "a.edit", ".edit", "edit", ".update",
        ];
        for entry in entries {
            let check = check(&[entry]);
            for required in requireds {
                let _ = check.matches_required_access(required);
                let _ = check.may_add_access(required);
                let _ = check.may_remove_access(required);
            }
        }
        assert!(allows(&[""], ""));
        assert!(!allows(&[""], "a"));
        assert!(!allows(&["", "!"], ""));
        assert!(allows(&["**"], "abc"));
        assert!(!allows(&["**"], "a.c"));
        assert!(allows(&["##"], "a.c"));
    }

    #[test]
    fn wildcard_runs_are_folded() {
        let identity = Identity {
            auth_id: USER.as_bytes().into(),
            session_uuid: SESSION.as_bytes().into(),
        };
        let tokens = |entry: &str| Pattern::compile(entry, &identity).tokens.to_vec();
        assert_eq!(tokens("**"), [Token::Star]);
        assert_eq!(tokens("*#*"), [Token::Hash]);
        assert_eq!(tokens("##*"), [Token::Hash]);
        assert_eq!(
            tokens("a.me.b*"),
            [
                Token::Literal(b"a.".as_slice().into()),
                Token::MeSegment,
                Token::Literal(b".b".as_slice().into()),
                Token::Star,
            ]
        );
    }

    #[test]
    fn long_access_strings_use_the_heap_rows() {
        let long = format!("a.{}", "b".repeat(1000));
        assert!(allows(&["a.*"], &long));
        assert!(allows(&["a.#"], &long));
        assert!(allows(&["#b"], &long));
        assert!(!allows(&["a.*c"], &long));
        assert!(allows(&["a.*.update"], &format!("{long}.edit")));
    }

    #[test]
    fn pathological_patterns_stay_fast() {
        let subject = "a".repeat(5000);
        let entry = "*a*a*a*a*a*a*a*a*a*a*b";
        let started = std::time::Instant::now();
        assert!(!allows(&[entry], &subject));
        assert!(allows(&[entry], &format!("{subject}b")));
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }

    #[test]
    fn access_check_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync + Clone>() {}
        assert_send_sync::<AccessCheck>();
    }

    // ---- Oracle: the regex construction described by the reference. ----

    /// Regex for one granted entry, built as the reference describes: escape,
    /// `*` -> `[^.#]*?`, `#` -> `.*?`, whole `me` / `my_session` segments ->
    /// alternatives, anchored. The `(?s)` flag and literal, non-empty ids are
    /// the deliberate differences listed in the module documentation.
    fn oracle_regex(auth_id: &str, session_uuid: &str, entry: &str) -> Regex {
        let segments: Vec<String> = entry
            .split('.')
            .map(|segment| {
                if segment == "me" && !auth_id.is_empty() {
                    format!("(me|{})", regex::escape(auth_id))
                } else if segment == "my_session" && !session_uuid.is_empty() {
                    format!("(my_session|{})", regex::escape(session_uuid))
                } else {
                    segment
                        .chars()
                        .map(|c| match c {
                            '*' => "[^.#]*?".to_string(),
                            '#' => ".*?".to_string(),
                            c => regex::escape(&c.to_string()),
                        })
                        .collect()
                }
            })
            .collect();
        let pattern = format!("(?s)^(?:{})$", segments.join(r"\."));
        Regex::new(&pattern).unwrap_or_else(|e| panic!("oracle regex {pattern:?}: {e}"))
    }

    fn oracle_variants(required: &str) -> Vec<String> {
        let mut variants = vec![required.to_string()];
        if let Some(stem) = required.strip_suffix(".edit") {
            variants.push(format!("{stem}.update"));
        } else if let Some(stem) = required.strip_suffix(".update") {
            variants.push(format!("{stem}.edit"));
        }
        variants
    }

    /// The whole check as the reference describes it, plus the
    /// `.edit`/`.update` rule; regexes are compiled once per generated case.
    struct Oracle {
        negatives: Vec<Regex>,
        positives: Vec<Regex>,
    }

    impl Oracle {
        fn new(auth_id: &str, session: &str, acl: &[String]) -> Self {
            let compile = |negative: bool| -> Vec<Regex> {
                acl.iter()
                    .filter(|entry| entry.starts_with('!') == negative)
                    .map(|entry| oracle_regex(auth_id, session, entry.strip_prefix('!').unwrap_or(entry)))
                    .collect()
            };
            Self {
                negatives: compile(true),
                positives: compile(false),
            }
        }

        fn allows(&self, required: &str) -> bool {
            let variants = oracle_variants(required);
            let any = |regexes: &[Regex]| {
                variants
                    .iter()
                    .any(|variant| regexes.iter().any(|regex| regex.is_match(variant)))
            };
            !any(&self.negatives) && any(&self.positives)
        }
    }

    const AUTH_IDS: &[&str] = &["ab", "a.b", "me", "a*", "#", "", "é", "my_session"];
    const SESSIONS: &[&str] = &["s1", "a", "b.a", "my_session", "", "*"];

    /// Segments of granted entries: mostly tiny strings over `ab*#` so that
    /// entries and access strings collide often.
    fn granted_segment() -> impl Strategy<Value = String> {
        prop_oneof![
            6 => "[ab*#]{0,3}",
            1 => Just("me".to_string()),
            1 => Just("my_session".to_string()),
            1 => Just("update".to_string()),
            1 => Just("edit".to_string()),
            1 => prop::sample::select(AUTH_IDS).prop_map(str::to_string),
        ]
    }

    fn entry() -> impl Strategy<Value = String> {
        (any::<bool>(), prop::collection::vec(granted_segment(), 1..5)).prop_map(|(negative, segments)| {
            let entry = segments.join(".");
            if negative {
                format!("!{entry}")
            } else {
                entry
            }
        })
    }

    /// Segments of required accesses, including the ids, a newline and the
    /// special characters (which are literal on this side).
    fn required_segment() -> impl Strategy<Value = String> {
        prop_oneof![
            6 => "[ab*#\n]{0,3}",
            1 => Just("me".to_string()),
            1 => Just("my_session".to_string()),
            1 => Just("update".to_string()),
            1 => Just("edit".to_string()),
            1 => prop::sample::select(AUTH_IDS).prop_map(str::to_string),
            1 => prop::sample::select(SESSIONS).prop_map(str::to_string),
        ]
    }

    fn required() -> impl Strategy<Value = String> {
        prop::collection::vec(required_segment(), 1..5).prop_map(|segments| segments.join("."))
    }

    fn ids() -> impl Strategy<Value = (&'static str, &'static str)> {
        (prop::sample::select(AUTH_IDS), prop::sample::select(SESSIONS))
    }

    /// An access string made from `entry` by filling its wildcards and
    /// `me`/`my_session` segments with short picks, so that about half of
    /// the generated pairs are hits or near misses rather than noise.
    fn instance_of(entry: String) -> impl Strategy<Value = String> {
        const FILLS: &[&str] = &["", "a", "ab", "b.", ".a", "#", "*", "me", "é", "\n"];
        let fills = prop::collection::vec(prop::sample::select(FILLS), entry.len() + 1);
        (fills, ids()).prop_map(move |(fills, (auth_id, session))| {
            let mut fills = fills.into_iter();
            let segments: Vec<String> = entry
                .split('.')
                .map(|segment| match segment {
                    "me" => auth_id.to_string(),
                    "my_session" => session.to_string(),
                    _ => segment
                        .chars()
                        .map(|c| match c {
                            '*' | '#' => fills.next().unwrap_or_default().to_string(),
                            c => c.to_string(),
                        })
                        .collect(),
                })
                .collect();
            segments.join(".")
        })
    }

    /// An entry without `!` and an access string that often nearly fits it.
    fn entry_and_required() -> impl Strategy<Value = (String, String)> {
        entry()
            .prop_map(|entry| entry.trim_start_matches('!').to_string())
            .prop_flat_map(|entry| {
                let required = prop_oneof![required(), instance_of(entry.clone())];
                (Just(entry), required)
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]

        #[test]
        fn pattern_agrees_with_regex_oracle(
            (auth_id, session) in ids(),
            (entry, required) in entry_and_required(),
        ) {
            let identity = Identity {
                auth_id: auth_id.as_bytes().into(),
                session_uuid: session.as_bytes().into(),
            };
            let pattern = Pattern::compile(&entry, &identity);
            let mut scratch = Scratch::new();
            let ours = pattern.is_match(&identity, Subject::new(&required), &mut scratch);
            let oracle = oracle_regex(auth_id, session, &entry).is_match(&required);
            prop_assert_eq!(ours, oracle, "entry {:?} required {:?}", entry, required);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1500))]

        #[test]
        fn access_check_agrees_with_regex_oracle(
            (auth_id, session) in ids(),
            acl in prop::collection::vec(entry(), 0..5),
            (source, required) in entry_and_required(),
        ) {
            // The entry the access string was made from is granted as well,
            // so hits are common and the random negatives have work to do.
            let mut acl = acl;
            acl.push(source);
            let check = AccessCheck::new(auth_id, session, &acl);
            let oracle = Oracle::new(auth_id, session, &acl);
            let oracle = |access: &str| oracle.allows(access);
            prop_assert_eq!(check.matches_required_access(&required), oracle(&required));
            prop_assert_eq!(
                check.may_add_access(&required),
                required.starts_with('!') || oracle(&required)
            );
            let negated = format!("!{required}");
            prop_assert!(check.may_add_access(&negated));
            prop_assert_eq!(check.may_remove_access(&negated), oracle(&required));
            prop_assert_eq!(check.may_remove_access(&required), oracle(&required));
        }

        #[test]
        fn arbitrary_strings_never_panic_and_agree(
            auth_id in ".{0,4}",
            session in ".{0,4}",
            acl in prop::collection::vec(".{0,8}", 0..4),
            required in ".{0,8}",
        ) {
            let check = AccessCheck::new(&auth_id, &session, &acl);
            let ours = check.matches_required_access(&required);
            let oracle = Oracle::new(&auth_id, &session, &acl);
            prop_assert_eq!(ours, oracle.allows(&required));
            let _ = check.may_add_access(&required);
            let _ = check.may_remove_access(&required);
        }
    }
}
