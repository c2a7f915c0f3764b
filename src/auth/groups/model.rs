//! Group request/response types and validation.

use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::api::error::ApiError;
use crate::auth::model::{is_valid_slug, slugify};

pub const NAME_MAX: usize = 128;
pub const SLUG_MAX: usize = 80;

/// A stored group. `system_managed` groups (the per-tenant admin group) are
/// shown as `read_only` and cannot be renamed or deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub uuid: Uuid,
    pub tenant_uuid: Uuid,
    pub name: String,
    pub slug: String,
    pub system_managed: bool,
}

impl Group {
    /// Upstream's group object; `system_managed` is its deprecated alias of
    /// `read_only`, still sent because older clients read it.
    pub fn to_json(&self) -> Value {
        json!({
            "uuid": self.uuid,
            "name": self.name,
            "slug": self.slug,
            "tenant_uuid": self.tenant_uuid,
            "read_only": self.system_managed,
            "system_managed": self.system_managed,
        })
    }
}

/// POST /groups body. Unknown keys are ignored, as upstream does.
#[derive(Debug, Default, Deserialize)]
pub struct GroupBody {
    pub uuid: Option<Uuid>,
    pub name: Option<String>,
    pub slug: Option<String>,
}

/// PUT /groups/{uuid} body: only the name is editable (upstream ignores a
/// `slug` sent there).
#[derive(Debug, Default, Deserialize)]
pub struct GroupPutBody {
    pub name: Option<String>,
}

/// A validated POST body. `slug` is `None` when it must be derived from the
/// name (which needs the store, to avoid an existing slug).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewGroup {
    pub uuid: Uuid,
    pub name: String,
    pub slug: Option<String>,
}

fn check_name(name: Option<String>) -> Result<String, ApiError> {
    let name = name.ok_or_else(|| ApiError::invalid_field("name", "Missing data for required field."))?;
    let len = name.chars().count();
    if len == 0 || len > NAME_MAX {
        return Err(ApiError::invalid_field(
            "name",
            format!("Length must be between 1 and {NAME_MAX}."),
        ));
    }
    Ok(name)
}

impl GroupBody {
    pub fn validate(self) -> Result<NewGroup, ApiError> {
        let name = check_name(self.name)?;
        if let Some(slug) = &self.slug {
            if !is_valid_slug(slug, SLUG_MAX) {
                return Err(ApiError::invalid_field(
                    "slug",
                    format!("Must be 1 to {SLUG_MAX} characters of [a-zA-Z0-9_]."),
                ));
            }
        }
        Ok(NewGroup {
            uuid: self.uuid.unwrap_or_else(Uuid::new_v4),
            name,
            slug: self.slug,
        })
    }
}

impl GroupPutBody {
    pub fn validate(self) -> Result<String, ApiError> {
        check_name(self.name)
    }
}

/// The slug a group gets when none is given.
pub fn derived_slug(name: &str) -> String {
    slugify(name, SLUG_MAX)
}

/// A fallback slug for when the derived one is taken, as upstream does:
/// short, random and valid.
pub fn random_slug(len: usize) -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut rng = rand::rng();
    (0..len)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// Parses an exact-match boolean list filter (`read_only=true`).
pub fn parse_bool_filter(key: &str, value: &str) -> Result<bool, ApiError> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        _ => Err(ApiError::invalid_field(key, "Not a valid boolean.")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(name: Option<&str>, slug: Option<&str>) -> GroupBody {
        GroupBody {
            uuid: None,
            name: name.map(String::from),
            slug: slug.map(String::from),
        }
    }

    #[test]
    fn valid_bodies() {
        let g = body(Some("Sales team"), None).validate().expect("valid");
        assert_eq!(g.name, "Sales team");
        assert_eq!(g.slug, None);
        let g = body(Some("x"), Some("my_slug_1")).validate().expect("valid");
        assert_eq!(g.slug.as_deref(), Some("my_slug_1"));
        let g = body(Some(&"é".repeat(NAME_MAX)), Some(&"a".repeat(SLUG_MAX)))
            .validate()
            .expect("limits are inclusive");
        assert_eq!(g.name.chars().count(), NAME_MAX);
    }

    #[test]
    fn rejects_bad_bodies() {
        let cases = [
            (body(None, None), "name"),
            (body(Some(""), None), "name"),
            (body(Some(&"a".repeat(NAME_MAX + 1)), None), "name"),
            (body(Some("ok"), Some("")), "slug"),
            (body(Some("ok"), Some("with-dash")), "slug"),
            (body(Some("ok"), Some("with space")), "slug"),
            (body(Some("ok"), Some(&"a".repeat(SLUG_MAX + 1))), "slug"),
        ];
        for (b, field) in cases {
            let err = b.validate().expect_err(field);
            assert_eq!(err.status(), 400);
            assert!(err.body()["details"][field].is_array(), "{:?}", err.body());
        }
    }

    #[test]
    fn put_needs_a_name() {
        assert!(GroupPutBody { name: None }.validate().is_err());
        assert!(GroupPutBody {
            name: Some(String::new())
        }
        .validate()
        .is_err());
        assert_eq!(GroupPutBody { name: Some("n".into()) }.validate().expect("valid"), "n");
    }

    #[test]
    fn slugs_are_valid() {
        assert_eq!(derived_slug("Sales team!"), "Sales_team_");
        assert!(is_valid_slug(&derived_slug(&"x y".repeat(100)), SLUG_MAX));
        let r = random_slug(3);
        assert!(is_valid_slug(&r, SLUG_MAX) && r.len() == 3);
    }

    #[test]
    fn bool_filter() {
        assert!(parse_bool_filter("read_only", "True").expect("bool"));
        assert!(!parse_bool_filter("read_only", "0").expect("bool"));
        assert!(parse_bool_filter("read_only", "maybe").is_err());
    }

    #[test]
    fn json_shape() {
        let g = Group {
            uuid: Uuid::nil(),
            tenant_uuid: Uuid::nil(),
            name: "n".into(),
            slug: "s".into(),
            system_managed: true,
        };
        let v = g.to_json();
        for key in ["uuid", "name", "slug", "tenant_uuid", "read_only", "system_managed"] {
            assert!(v.get(key).is_some(), "{key}");
        }
        assert_eq!(v["read_only"], true);
    }
}
