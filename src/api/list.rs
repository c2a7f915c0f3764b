//! List parameters (`limit`, `offset`, `order`, `direction`, `search`,
//! `recurse` and exact-match field filters) and the list envelope.

use std::collections::BTreeMap;

use serde::Serialize;

use super::error::ApiError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Direction {
    #[default]
    Asc,
    Desc,
}

impl Direction {
    pub fn sql(self) -> &'static str {
        match self {
            Direction::Asc => "ASC",
            Direction::Desc => "DESC",
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct ListParams {
    pub limit: Option<u32>,
    pub offset: u32,
    pub order: Option<String>,
    pub direction: Direction,
    pub search: Option<String>,
    pub recurse: bool,
    /// Remaining `key=value` pairs: exact-match filters, checked against each
    /// resource's allow-list by [`ListParams::filter`].
    pub filters: BTreeMap<String, String>,
}

pub(crate) fn bool_param(key: &str, value: &str) -> Result<bool, ApiError> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" | "" => Ok(false),
        _ => Err(ApiError::invalid_field(key, "Not a valid boolean.")),
    }
}

impl ListParams {
    /// Parses the query string; `orderable` lists the columns `order` may
    /// name, `filterable` the exact-match filters. Anything else is a 400 so
    /// typos don't silently return everything.
    pub fn parse(query: &str, orderable: &[&str], filterable: &[&str]) -> Result<ListParams, ApiError> {
        let pairs: Vec<(String, String)> = super::body::parse_query(query)?;
        let mut p = ListParams::default();
        for (key, value) in pairs {
            match key.as_str() {
                "limit" => {
                    p.limit = Some(
                        value
                            .parse()
                            .map_err(|_| ApiError::invalid_field("limit", "Not a valid integer."))?,
                    )
                }
                "offset" => {
                    p.offset = value
                        .parse()
                        .map_err(|_| ApiError::invalid_field("offset", "Not a valid integer."))?
                }
                "order" if value.is_empty() => {}
                "order" => {
                    if !orderable.contains(&value.as_str()) {
                        return Err(ApiError::invalid_field(
                            "order",
                            format!("Must be one of: {}.", orderable.join(", ")),
                        ));
                    }
                    p.order = Some(value);
                }
                "direction" => {
                    p.direction = match value.as_str() {
                        "asc" | "" => Direction::Asc,
                        "desc" => Direction::Desc,
                        _ => return Err(ApiError::invalid_field("direction", "Must be one of: asc, desc.")),
                    }
                }
                "search" => p.search = Some(value).filter(|s| !s.is_empty()),
                "recurse" => p.recurse = bool_param("recurse", &value)?,
                // Tokens may ride in the query on some endpoints; never a filter.
                "token" => {}
                other if filterable.contains(&other) => {
                    p.filters.insert(key, value);
                }
                _ => {} // upstream ignores unknown query keys
            }
        }
        Ok(p)
    }

    pub fn filter(&self, key: &str) -> Option<&str> {
        self.filters.get(key).map(String::as_str)
    }

    /// `LIMIT ? OFFSET ?` with values inlined (they are integers we parsed).
    pub fn limit_sql(&self) -> String {
        match self.limit {
            Some(l) => format!(" LIMIT {l} OFFSET {}", self.offset),
            None if self.offset > 0 => format!(" LIMIT -1 OFFSET {}", self.offset),
            None => String::new(),
        }
    }

    /// `%search%` for a LIKE, with LIKE wildcards in the term escaped (`\`).
    pub fn search_pattern(&self) -> Option<String> {
        self.search.as_deref().map(contains_pattern)
    }
}

/// `%term%` for a `LIKE … ESCAPE '\'`, with the term's own LIKE wildcards escaped.
pub fn contains_pattern(term: &str) -> String {
    let escaped = term.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
    format!("%{escaped}%")
}

/// `{"items": [...], "total": n, "filtered": n}` (auth, call-logd, chatd).
#[derive(Debug, Serialize)]
pub struct ListResponse<T: Serialize> {
    pub items: Vec<T>,
    pub total: u64,
    pub filtered: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_common_params_and_filters() {
        let p = ListParams::parse(
            "limit=10&offset=5&order=name&direction=desc&search=ab&recurse=true&username=x&other=y",
            &["name"],
            &["username"],
        )
        .expect("parse");
        assert_eq!(p.limit, Some(10));
        assert_eq!(p.offset, 5);
        assert_eq!(p.direction, Direction::Desc);
        assert!(p.recurse);
        assert_eq!(p.filter("username"), Some("x"));
        assert_eq!(p.filter("other"), None);
        assert_eq!(p.limit_sql(), " LIMIT 10 OFFSET 5");
    }

    #[test]
    fn rejects_bad_values() {
        for q in [
            "limit=-1",
            "limit=x",
            "offset=a",
            "direction=up",
            "order=password_hash",
            "recurse=maybe",
        ] {
            let err = ListParams::parse(q, &["name"], &[]).expect_err(q);
            assert_eq!(err.status(), 400, "{q}");
        }
    }

    #[test]
    fn search_escapes_like_wildcards() {
        let p = ListParams::parse("search=50%25_off", &[], &[]).expect("parse");
        assert_eq!(p.search_pattern().as_deref(), Some("%50\\%\\_off%"));
    }
}
