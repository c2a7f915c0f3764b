//! `[key, value]` option lists copied into Asterisk configuration files
//! (pjsip.conf sections, sccp.conf accounts). Whatever a client sends must not
//! be able to change the file's structure: keys are plain identifiers, values
//! have no line breaks, no control characters, no comment (`;`) and no section
//! brackets (except an IPv6 literal such as `[::]:5060`). Error messages name
//! the field and position, never the value (it may be a password).

use rand::Rng;

use crate::api::error::ApiError;

/// One `[key, value]` pair, as the API shows it.
pub type KeyValue = (String, String);

/// Longest key and value accepted.
pub const MAX_KEY: usize = 128;
pub const MAX_VALUE: usize = 2048;

/// Option keys: letters, digits, `_`, `-`, `.`; not `type` (the generator writes
/// each section's type itself).
pub fn valid_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= MAX_KEY
        && key.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b))
        && !key.eq_ignore_ascii_case("type")
}

/// Option values: printable, no `;`, brackets only around an IPv6 literal.
pub fn valid_value(value: &str) -> bool {
    if value.len() > MAX_VALUE || value.chars().any(|c| c.is_control() || c == ';') {
        return false;
    }
    let mut rest = value;
    while let Some(open) = rest.find(['[', ']']) {
        if rest[open..].starts_with(']') {
            return false;
        }
        let after = &rest[open + 1..];
        let Some(close) = after.find(']') else {
            return false;
        };
        let inside = &after[..close];
        if inside.is_empty() || !inside.bytes().all(|b| b.is_ascii_hexdigit() || b":.".contains(&b)) {
            return false;
        }
        rest = &after[close + 1..];
    }
    true
}

/// Checks every pair of `field`; `allowed` restricts the keys (SCCP).
pub fn validate(field: &str, options: &[KeyValue], allowed: Option<&[&str]>) -> Result<(), ApiError> {
    for (i, (key, value)) in options.iter().enumerate() {
        if !valid_key(key) {
            return Err(ApiError::invalid_field(
                &format!("{field}[{i}]"),
                "Invalid option name: letters, digits, '_', '-', '.' only (1 to 128), not 'type'.",
            ));
        }
        if let Some(allowed) = allowed {
            if !allowed.contains(&key.as_str()) {
                return Err(ApiError::invalid_field(
                    &format!("{field}[{i}]"),
                    format!("Unsupported option '{key}': must be one of {}.", allowed.join(", ")),
                ));
            }
        }
        if !valid_value(value) {
            return Err(ApiError::invalid_field(
                &format!("{field}[{i}]"),
                format!(
                    "Invalid value for option '{key}': no line break, control character or ';', \
                     brackets only around an IPv6 address, at most {MAX_VALUE} characters."
                ),
            ));
        }
    }
    Ok(())
}

/// The value of `key` in `options` (the last one wins, as in Asterisk).
pub fn get<'a>(options: &'a [KeyValue], key: &str) -> Option<&'a str> {
    options.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// Section names in Asterisk files: letters, digits, `_`, `-`, `.`, `+`, `@`.
pub fn valid_section_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-.+@".contains(&b))
        && !["general", "global", "system"].contains(&name.to_ascii_lowercase().as_str())
}

/// Upstream's generated names: 8 random lowercase letters and digits.
pub fn random_name() -> String {
    const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..8)
        .map(|_| CHARS[rng.random_range(0..CHARS.len())] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_values() {
        for ok in ["username", "max_contacts", "set_var", "rtp.ipv6", "a-b"] {
            assert!(valid_key(ok), "{ok}");
        }
        for bad in [
            "",
            "type",
            "TYPE",
            "a b",
            "a=b",
            "[x]",
            "a;b",
            "#exec",
            "a\nb",
            &"k".repeat(129),
        ] {
            assert!(!valid_key(bad), "{bad:?}");
        }
        for ok in [
            "",
            "secret pass",
            "0.0.0.0:5060",
            "[::]:5060",
            "[fe80::1]",
            "a=b",
            "sip:x@y",
            "é",
        ] {
            assert!(valid_value(ok), "{ok}");
        }
        for bad in [
            "a\nb",
            "a\rb",
            "x;comment",
            "[general]",
            "]",
            "[",
            "[::",
            "a\u{0}b",
            "tab\there",
            &"v".repeat(MAX_VALUE + 1),
        ] {
            assert!(!valid_value(bad), "{bad:?}");
        }
    }

    #[test]
    fn errors_name_the_position_not_the_value() {
        let opts = vec![
            ("username".to_string(), "u".to_string()),
            ("password".to_string(), "se;cret".to_string()),
        ];
        let err = validate("auth_section_options", &opts, None).expect_err("bad value");
        let body = err.body().to_string();
        assert!(body.contains("auth_section_options[1]"), "{body}");
        assert!(!body.contains("se;cret"), "{body}");
        let err = validate("options", &opts, Some(&["cid_name"])).expect_err("not allowed");
        assert!(err.body().to_string().contains("options[0]"));
    }

    #[test]
    fn names() {
        assert!(valid_section_name("abc-123_x.y"));
        assert!(!valid_section_name("a]b") && !valid_section_name("") && !valid_section_name("global"));
        let n = random_name();
        assert_eq!(n.len(), 8);
        assert!(valid_section_name(&n));
    }
}
