//! A parser for Asterisk's configuration syntax, used to check every file
//! accentd renders before Asterisk reads it: sections (`[name]`, templates
//! `[name](!)`, inheritance `[name](tpl1,tpl2)`), `key = value` and
//! `key => value` lines, `;` comments, `#include` / `#exec`. On top of it,
//! dialplan checks: priorities of an extension run 1, 2, 3... (or `n`), and
//! every `Goto`/`GoSub` target names a defined context and extension.

use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    pub name: String,
    pub is_template: bool,
    pub inherits: Vec<String>,
    /// `(key, value)` in file order; `exten => ...` kept with key `exten`.
    pub entries: Vec<(String, String)>,
    pub line: usize,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfFile {
    pub includes: Vec<String>,
    pub sections: Vec<Section>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct SyntaxError {
    pub line: usize,
    pub message: String,
}

fn err(line: usize, message: impl Into<String>) -> SyntaxError {
    SyntaxError {
        line,
        message: message.into(),
    }
}

/// Strips a `;` comment (`\;` is a literal semicolon).
fn strip_comment(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&';') => {
                out.push('\\');
                out.push(';');
                chars.next();
            }
            ';' => break,
            _ => out.push(c),
        }
    }
    out
}

fn valid_section_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 79
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.+@/:".contains(&b))
}

pub fn parse(text: &str) -> Result<ConfFile, SyntaxError> {
    let mut file = ConfFile::default();
    let mut seen: BTreeSet<String> = BTreeSet::new();
    let mut block_comment = false;
    let mut repeated: Vec<usize> = Vec::new();
    // Template names, so inheritance checks stay O(1) with thousands of sections.
    let mut templates: std::collections::HashSet<String> = std::collections::HashSet::new();
    // `split`, not `lines`: a CR before the newline must be seen (Asterisk would keep it).
    for (i, raw) in text.split('\n').enumerate() {
        let n = i + 1;
        if raw.contains('\r') {
            return Err(err(n, "carriage return inside a line"));
        }
        // `;-- ... --;` block comments.
        let mut rest = raw.to_string();
        if block_comment {
            match rest.find("--;") {
                Some(p) => {
                    rest = rest[p + 3..].to_string();
                    block_comment = false;
                }
                None => continue,
            }
        }
        if let Some(p) = rest.find(";--") {
            block_comment = !rest[p..].contains("--;");
            rest.truncate(p);
        }
        let line = strip_comment(&rest);
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if let Some(directive) = line.strip_prefix('#') {
            let (word, arg) = directive.split_once(char::is_whitespace).unwrap_or((directive, ""));
            match word {
                "include" | "tryinclude" | "exec" => {
                    let arg = arg.trim().trim_matches('"');
                    if arg.is_empty() {
                        return Err(err(n, format!("#{word} without a file")));
                    }
                    file.includes.push(arg.to_string());
                }
                _ => return Err(err(n, format!("unknown directive #{word}"))),
            }
            continue;
        }
        if let Some(head) = line.strip_prefix('[') {
            let close = head.find(']').ok_or_else(|| err(n, "section header without ]"))?;
            let name = &head[..close];
            if !valid_section_name(name) {
                return Err(err(n, format!("bad section name {name:?}")));
            }
            let after = head[close + 1..].trim();
            let (mut is_template, mut inherits) = (false, Vec::new());
            if !after.is_empty() {
                let inner = after
                    .strip_prefix('(')
                    .and_then(|a| a.strip_suffix(')'))
                    .ok_or_else(|| err(n, format!("junk after section header: {after:?}")))?;
                for part in inner.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                    match part {
                        "!" => is_template = true,
                        "+" => {}
                        tpl => {
                            if !templates.contains(tpl) {
                                return Err(err(n, format!("[{name}] inherits from unknown template {tpl:?}")));
                            }
                            inherits.push(tpl.to_string());
                        }
                    }
                }
            }
            // A repeated section name is legal for `(+)` and for pjsip
            // objects of different types (checked at the end of the file).
            if !seen.insert(name.to_string()) && !after.contains('+') {
                repeated.push(file.sections.len());
            }
            if is_template {
                templates.insert(name.to_string());
            }
            file.sections.push(Section {
                name: name.to_string(),
                is_template,
                inherits,
                entries: Vec::new(),
                line: n,
            });
            continue;
        }
        let section = file
            .sections
            .last_mut()
            .ok_or_else(|| err(n, "option before any section"))?;
        let (key, value) = if let Some((k, v)) = line.split_once("=>") {
            (k, v)
        } else if let Some((k, v)) = line.split_once('=') {
            (k, v.strip_prefix('>').unwrap_or(v))
        } else {
            return Err(err(n, format!("not a key = value line: {line:?}")));
        };
        let key = key.trim();
        if key.is_empty() || key.contains(['[', ']', ' ']) {
            return Err(err(n, format!("bad key {key:?}")));
        }
        section.entries.push((key.to_string(), value.trim().to_string()));
    }
    if block_comment {
        return Err(err(text.lines().count(), "unterminated ;-- comment"));
    }
    if !repeated.is_empty() {
        // Indexed once: a pjsip.conf repeats the name of every line's endpoint
        // (auth, aor), so scanning all sections per repeat would be quadratic.
        let mut by_name: std::collections::HashMap<&str, Vec<usize>> = std::collections::HashMap::new();
        let mut template_types: std::collections::HashMap<&str, &str> = std::collections::HashMap::new();
        for (i, s) in file.sections.iter().enumerate() {
            by_name.entry(s.name.as_str()).or_default().push(i);
            if s.is_template {
                if let Some((_, v)) = s.entries.iter().find(|(k, _)| k == "type") {
                    template_types.entry(s.name.as_str()).or_insert(v.as_str());
                }
            }
        }
        for i in repeated {
            check_repeated(&file.sections, i, &by_name, &template_types)?;
        }
    }
    Ok(file)
}

/// The `type` of a section: its own `type = ...` or its first template's.
fn section_type<'a>(s: &'a Section, template_types: &std::collections::HashMap<&str, &'a str>) -> Option<&'a str> {
    if let Some((_, v)) = s.entries.iter().find(|(k, _)| k == "type") {
        return Some(v.as_str());
    }
    template_types.get(s.inherits.first()?.as_str()).copied()
}

/// Section `i` repeats an earlier name: allowed only between pjsip-style
/// objects whose types differ (`[alice]` endpoint, auth and aor).
fn check_repeated(
    sections: &[Section],
    i: usize,
    by_name: &std::collections::HashMap<&str, Vec<usize>>,
    template_types: &std::collections::HashMap<&str, &str>,
) -> Result<(), SyntaxError> {
    let s = &sections[i];
    let twice = || err(s.line, format!("section [{}] defined twice", s.name));
    let Some(kind) = section_type(s, template_types) else {
        return Err(twice());
    };
    let earlier = by_name.get(s.name.as_str()).into_iter().flatten().filter(|&&j| j < i);
    for &j in earlier {
        if section_type(&sections[j], template_types).is_none_or(|k| k == kind) {
            return Err(twice());
        }
    }
    Ok(())
}

/// One `exten => name,priority,app(args)` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DialplanLine {
    pub context: String,
    pub exten: String,
    pub priority: String,
    pub app: String,
    pub line: usize,
}

/// Splits on commas outside parentheses.
fn split_top(s: &str) -> Vec<String> {
    let (mut parts, mut cur, mut depth) = (Vec::new(), String::new(), 0i32);
    for c in s.chars() {
        match c {
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => depth -= 1,
            _ => {}
        }
        if c == ',' && depth == 0 {
            parts.push(std::mem::take(&mut cur));
        } else {
            cur.push(c);
        }
    }
    parts.push(cur);
    parts
}

/// Checks a parsed extensions.conf (with the other dialplan files it
/// includes already merged in `files`): priorities consecutive per
/// extension, `n` only after a first priority, and every `Goto`/`GoSub`
/// target with a literal context and extension defined somewhere.
pub fn check_dialplan(files: &[&ConfFile]) -> Result<(), String> {
    let mut lines: Vec<DialplanLine> = Vec::new();
    let mut includes: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut contexts: BTreeSet<String> = BTreeSet::new();
    for f in files {
        for s in &f.sections {
            if matches!(s.name.as_str(), "general" | "globals") {
                continue;
            }
            contexts.insert(s.name.clone());
            let mut current_exten: Option<String> = None;
            for (k, v) in &s.entries {
                match k.as_str() {
                    "exten" => {
                        let parts = split_top(v);
                        if parts.len() < 3 {
                            return Err(format!("[{}] exten => {v}: needs name,priority,application", s.name));
                        }
                        let mut exten = parts[0].trim().to_string();
                        if exten == "_" || exten.is_empty() {
                            return Err(format!("[{}] exten => {v}: empty extension", s.name));
                        }
                        // `exten/callerid` forms: keep the extension part.
                        if let Some((e, _)) = exten.split_once('/') {
                            exten = e.to_string();
                        }
                        current_exten = Some(exten.clone());
                        lines.push(DialplanLine {
                            context: s.name.clone(),
                            exten,
                            priority: parts[1].trim().to_string(),
                            app: parts[2..].join(",").trim().to_string(),
                            line: s.line,
                        });
                    }
                    "same" => {
                        let exten = current_exten
                            .clone()
                            .ok_or_else(|| format!("[{}] same => before any exten", s.name))?;
                        let parts = split_top(v);
                        if parts.len() < 2 {
                            return Err(format!("[{}] same => {v}: needs priority,application", s.name));
                        }
                        lines.push(DialplanLine {
                            context: s.name.clone(),
                            exten,
                            priority: parts[0].trim().to_string(),
                            app: parts[1..].join(",").trim().to_string(),
                            line: s.line,
                        });
                    }
                    "include" => includes.entry(s.name.clone()).or_default().push(v.trim().to_string()),
                    "switch" | "ignorepat" => {}
                    other => return Err(format!("[{}] unexpected dialplan key {other:?}", s.name)),
                }
            }
        }
    }
    // Priorities: per (context, exten), numbers must go 1, 2, 3... with `n`
    // meaning "previous + 1"; `hint` lines stand apart; labels `n(x)` allowed.
    let mut last: BTreeMap<(String, String), u32> = BTreeMap::new();
    let mut defined: BTreeSet<(String, String)> = BTreeSet::new();
    for l in &lines {
        if l.priority == "hint" {
            continue;
        }
        let key = (l.context.clone(), l.exten.clone());
        let prio = l.priority.split('(').next().unwrap_or_default();
        let prev = last.get(&key).copied();
        let next = match (prio, prev) {
            ("n", Some(p)) => p + 1,
            ("n", None) => return Err(format!("[{}] {}: priority n before priority 1", l.context, l.exten)),
            (num, prev) => {
                let num: u32 = num
                    .parse()
                    .map_err(|_| format!("[{}] {}: bad priority {:?}", l.context, l.exten, l.priority))?;
                let expected = prev.map(|p| p + 1).unwrap_or(1);
                if num != expected {
                    return Err(format!(
                        "[{}] {}: priority {num} where {expected} was expected",
                        l.context, l.exten
                    ));
                }
                num
            }
        };
        last.insert(key.clone(), next);
        defined.insert(key);
    }
    for (ctx, incs) in &includes {
        for inc in incs {
            if !contexts.contains(inc) {
                return Err(format!("[{ctx}] includes unknown context {inc:?}"));
            }
        }
    }
    for l in &lines {
        check_jump(l, &defined)?;
    }
    Ok(())
}

/// `Goto(ctx,exten,prio)`, `GoSub(ctx,exten,prio(args))`, `GotoIf(cond?ctx,exten,1:...)`:
/// literal targets only (variables are resolved at call time).
fn check_jump(l: &DialplanLine, defined: &BTreeSet<(String, String)>) -> Result<(), String> {
    let app = l.app.trim();
    let (name, args) = match app.split_once('(') {
        Some((n, a)) => (n.trim().to_ascii_lowercase(), a.strip_suffix(')').unwrap_or(a)),
        None => return Ok(()),
    };
    let targets: Vec<&str> = match name.as_str() {
        "goto" | "gosub" => vec![args],
        "gotoif" | "gosubif" => match args.split_once('?') {
            Some((_, branches)) => split_top_colon(branches),
            None => return Err(format!("[{}] {}: {name} without ?", l.context, l.exten)),
        },
        _ => return Ok(()),
    };
    for t in targets {
        let t = t.trim();
        if t.is_empty() || t.contains("${") || t.contains("$[") {
            continue;
        }
        let parts = split_top(t);
        let (ctx, exten) = match parts.len() {
            3 => (parts[0].trim().to_string(), parts[1].trim().to_string()),
            2 => (l.context.clone(), parts[0].trim().to_string()),
            _ => continue, // a label or priority in the same extension
        };
        if !defined.contains(&(ctx.clone(), exten.clone())) && !pattern_defined(defined, &ctx, &exten) {
            return Err(format!(
                "[{}] {}: {name} target {ctx},{exten} is not defined",
                l.context, l.exten
            ));
        }
    }
    Ok(())
}

fn split_top_colon(s: &str) -> Vec<&str> {
    let mut depth = 0i32;
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ':' if depth == 0 => return vec![&s[..i], &s[i + 1..]],
            _ => {}
        }
    }
    vec![s]
}

/// Whether a pattern extension (`_X.`) of `ctx` matches `exten`.
fn pattern_defined(defined: &BTreeSet<(String, String)>, ctx: &str, exten: &str) -> bool {
    defined
        .iter()
        .filter(|(c, e)| c == ctx && e.starts_with('_'))
        .any(|(_, p)| pattern_matches(&p[1..], exten))
}

fn pattern_matches(pattern: &str, exten: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let e: Vec<char> = exten.chars().collect();
    let (mut i, mut j) = (0, 0);
    while i < p.len() {
        match p[i] {
            '.' => return j < e.len(),
            '!' => return true,
            'X' | 'x' if j < e.len() && e[j].is_ascii_digit() => {}
            'Z' | 'z' if j < e.len() && ('1'..='9').contains(&e[j]) => {}
            'N' | 'n' if j < e.len() && ('2'..='9').contains(&e[j]) => {}
            '[' => {
                let close = match p[i..].iter().position(|&c| c == ']') {
                    Some(c) => i + c,
                    None => return false,
                };
                if j >= e.len() {
                    return false;
                }
                let set: String = p[i + 1..close].iter().collect();
                if !set_contains(&set, e[j]) {
                    return false;
                }
                i = close;
            }
            c if j < e.len() && c == e[j] => {}
            _ => return false,
        }
        i += 1;
        j += 1;
    }
    j == e.len()
}

fn set_contains(set: &str, c: char) -> bool {
    let chars: Vec<char> = set.chars().collect();
    let mut k = 0;
    while k < chars.len() {
        if k + 2 < chars.len() && chars[k + 1] == '-' {
            if chars[k] <= c && c <= chars[k + 2] {
                return true;
            }
            k += 3;
        } else {
            if chars[k] == c {
                return true;
            }
            k += 1;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_templates_and_inheritance() {
        let f = parse(
            "; comment\n#include \"other.conf\"\n[tpl](!)\ntype = endpoint\n[1001](tpl)\nauth = 1001-auth ; trailing\n;-- block\n comment --;\n[1001-auth]\npassword = a\\;b\n",
        )
        .expect("parse");
        assert_eq!(f.includes, vec!["other.conf"]);
        assert_eq!(f.sections.len(), 3);
        assert!(f.sections[0].is_template);
        assert_eq!(f.sections[1].inherits, vec!["tpl"]);
        assert_eq!(f.sections[1].entries, vec![("auth".into(), "1001-auth".into())]);
        assert_eq!(f.sections[2].entries[0].1, "a\\;b");
    }

    #[test]
    fn rejects_what_would_confuse_asterisk() {
        for bad in [
            "key = value\n",           // before a section
            "[a]\n[a]\n",              // twice
            "[a](missing)\n",          // unknown template
            "[a b]\n",                 // bad name
            "[a]\njust words\n",       // not key=value
            "[a\n",                    // no ]
            "#bogus x\n",              // directive
            "[a]\nk = v\r\n",          // CR
            "[a]\n;-- never closed\n", // block comment
            "[a]\ntype = aor\n[a]\ntype = aor\n",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
        // pjsip objects of different types may share a name, also through a template.
        parse("[t](!)\ntype = aor\n[a]\ntype = endpoint\n[a](t)\n").expect("endpoint and aor");
    }

    #[test]
    fn dialplan_priorities_and_targets() {
        let ok = parse(
            "[sub]\nexten => s,1,NoOp()\nsame => n,Return()\n[ctx]\nexten => 1000,hint,PJSIP/a\nexten => 1000,1,GoSub(sub,s,1(x,y))\nsame => n(l),Goto(ctx,_1XXX,1)\nexten => _1XXX,1,Goto(sub,s,1)\nexten => 2000,1,GotoIf($[${X}=1]?sub,s,1:ctx,1000,1)\ninclude => sub\n",
        )
        .expect("parse");
        check_dialplan(&[&ok]).expect("valid");
        for bad in [
            "[c]\nexten => 1,2,NoOp()\n",
            "[c]\nexten => 1,n,NoOp()\n",
            "[c]\nexten => 1,1,NoOp()\nexten => 1,3,NoOp()\n",
            "[c]\nexten => 1,1,GoSub(nowhere,s,1())\n",
            "[c]\nexten => 1,1,Goto(c,2,1)\n",
            "[c]\ninclude => missing\n",
            "[c]\nsame => n,NoOp()\n",
        ] {
            let f = parse(bad).expect("parse");
            assert!(check_dialplan(&[&f]).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn patterns() {
        assert!(pattern_matches("0XXXXXXXXX", "0123456789"));
        assert!(!pattern_matches("0XXXXXXXXX", "012345678"));
        assert!(pattern_matches("NXX.", "2001"));
        assert!(pattern_matches("[1-3]XX", "250"));
        assert!(!pattern_matches("[1-3]XX", "450"));
    }
}
