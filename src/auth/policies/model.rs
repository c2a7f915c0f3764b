//! Policy request/response types and validation.

use std::collections::HashSet;

use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::api::error::ApiError;
use crate::auth::model::{is_valid_slug, slugify};

pub const NAME_MAX: usize = 80;
pub const SLUG_MAX: usize = 80;
/// Upstream stores descriptions as unbounded text; we cap them so a client
/// cannot park megabytes in every policy listing.
pub const DESCRIPTION_MAX: usize = 2048;
pub const ACCESS_MAX: usize = 512;

/// POST /policies and PUT /policies/{id} body. Unknown keys are ignored, as
/// upstream's schema does; on PUT `uuid`, `slug` and `shared` are ignored too
/// (upstream makes them read-only after creation).
#[derive(Debug, Default, Deserialize)]
pub struct PolicyBody {
    pub uuid: Option<Uuid>,
    pub name: Option<String>,
    pub slug: Option<String>,
    pub description: Option<String>,
    pub acl: Option<Vec<String>>,
    pub shared: Option<bool>,
}

/// A policy as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub uuid: Uuid,
    pub tenant_uuid: Uuid,
    pub name: String,
    pub slug: String,
    pub description: Option<String>,
    /// Access strings in the order they were given.
    pub acl: Vec<String>,
    pub config_managed: bool,
    pub shared: bool,
}

/// What PUT may change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyUpdate {
    pub name: String,
    pub description: Option<String>,
    pub acl: Vec<String>,
}

impl Policy {
    /// Upstream's policy object as seen from a request whose scope covers
    /// `scope_tenants` (selected tenant first). A policy from outside those
    /// tenants can only be a shared or config-managed one of an ancestor:
    /// upstream shows it "as the viewer's own", i.e. with the viewer's
    /// tenant, `read_only: true` and `shared: false`.
    pub fn to_json(&self, scope_tenants: &[Uuid]) -> Value {
        let inherited = !scope_tenants.contains(&self.tenant_uuid);
        let tenant_uuid = match scope_tenants.first() {
            Some(t) if inherited => *t,
            _ => self.tenant_uuid,
        };
        json!({
            "uuid": self.uuid,
            "tenant_uuid": tenant_uuid,
            "name": self.name,
            "slug": self.slug,
            "description": self.description,
            "acl": self.acl,
            "read_only": self.config_managed || inherited,
            "shared": self.shared && !inherited,
        })
    }
}

fn too_long(field: &str, max: usize) -> ApiError {
    ApiError::invalid_field(field, format!("Longer than maximum length {max}."))
}

fn check_name(name: Option<String>) -> Result<String, ApiError> {
    let name = name.ok_or_else(|| ApiError::invalid_field("name", "Missing data for required field."))?;
    if name.is_empty() {
        return Err(ApiError::invalid_field("name", "Shorter than minimum length 1."));
    }
    if name.chars().count() > NAME_MAX {
        return Err(too_long("name", NAME_MAX));
    }
    Ok(name)
}

fn check_description(description: &Option<String>) -> Result<(), ApiError> {
    match description {
        Some(d) if d.chars().count() > DESCRIPTION_MAX => Err(too_long("description", DESCRIPTION_MAX)),
        _ => Ok(()),
    }
}

/// Why `access` is not a storable access string, if it is not one.
pub fn access_problem(access: &str) -> Option<String> {
    if access.is_empty() {
        Some("Shorter than minimum length 1.".into())
    } else if access.chars().count() > ACCESS_MAX {
        Some(format!("Longer than maximum length {ACCESS_MAX}."))
    } else if access.chars().any(char::is_whitespace) {
        Some("Must not contain whitespace.".into())
    } else {
        None
    }
}

/// Validates every entry (errors keyed by index, like upstream's list
/// errors) and drops repeats, keeping the first occurrence's position.
fn check_acl(acl: Option<Vec<String>>) -> Result<Vec<String>, ApiError> {
    let acl = acl.unwrap_or_default();
    for (i, access) in acl.iter().enumerate() {
        if let Some(problem) = access_problem(access) {
            return Err(ApiError::InvalidData {
                details: json!({ "acl": { i.to_string(): [problem] } }),
            });
        }
    }
    let mut seen = HashSet::new();
    Ok(acl.into_iter().filter(|a| seen.insert(a.clone())).collect())
}

impl PolicyBody {
    /// Validates a creation body for `tenant`. The slug, when absent, is
    /// derived from the name; the store makes it unique if needed.
    pub fn into_new(self, tenant: Uuid) -> Result<Policy, ApiError> {
        let name = check_name(self.name)?;
        if let Some(slug) = &self.slug {
            if !is_valid_slug(slug, SLUG_MAX) {
                return Err(ApiError::invalid_field(
                    "slug",
                    format!("Must be 1 to {SLUG_MAX} characters of [a-zA-Z0-9_]."),
                ));
            }
        }
        check_description(&self.description)?;
        let acl = check_acl(self.acl)?;
        Ok(Policy {
            uuid: self.uuid.unwrap_or_else(Uuid::new_v4),
            tenant_uuid: tenant,
            slug: self.slug.unwrap_or_else(|| slugify(&name, SLUG_MAX)),
            name,
            description: self.description,
            acl,
            config_managed: false,
            shared: self.shared.unwrap_or(false),
        })
    }

    /// Validates a PUT body: a full replacement of name, description and ACL
    /// (an absent `acl` empties it, as upstream does).
    pub fn into_update(self) -> Result<PolicyUpdate, ApiError> {
        let name = check_name(self.name)?;
        check_description(&self.description)?;
        let acl = check_acl(self.acl)?;
        Ok(PolicyUpdate {
            name,
            description: self.description,
            acl,
        })
    }
}

/// The ACL difference between `old` and `new`: (added, removed).
pub fn acl_diff<'a>(old: &'a [String], new: &'a [String]) -> (Vec<&'a str>, Vec<&'a str>) {
    let added = new.iter().filter(|a| !old.contains(a)).map(String::as_str).collect();
    let removed = old.iter().filter(|a| !new.contains(a)).map(String::as_str).collect();
    (added, removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(name: &str) -> PolicyBody {
        PolicyBody {
            name: Some(name.into()),
            ..Default::default()
        }
    }

    #[test]
    fn slug_derived_from_name_and_acl_deduplicated() {
        let p = PolicyBody {
            acl: Some(vec!["a.b".into(), "!c.#".into(), "a.b".into()]),
            ..body("Call center admins")
        }
        .into_new(Uuid::nil())
        .expect("valid");
        assert_eq!(p.slug, "Call_center_admins");
        assert_eq!(p.acl, vec!["a.b", "!c.#"]);
        assert!(!p.shared && !p.config_managed);
    }

    #[test]
    fn rejects_bad_fields() {
        let bad = [
            PolicyBody::default(),
            body(""),
            body(&"x".repeat(NAME_MAX + 1)),
            PolicyBody {
                slug: Some("with-dash".into()),
                ..body("ok")
            },
            PolicyBody {
                slug: Some("s".repeat(SLUG_MAX + 1)),
                ..body("ok")
            },
            PolicyBody {
                slug: Some(String::new()),
                ..body("ok")
            },
            PolicyBody {
                description: Some("d".repeat(DESCRIPTION_MAX + 1)),
                ..body("ok")
            },
            PolicyBody {
                acl: Some(vec!["ok".into(), String::new()]),
                ..body("ok")
            },
            PolicyBody {
                acl: Some(vec!["a b".into()]),
                ..body("ok")
            },
            PolicyBody {
                acl: Some(vec!["a".repeat(ACCESS_MAX + 1)]),
                ..body("ok")
            },
        ];
        for b in bad {
            let shown = format!("{b:?}");
            let err = b.into_new(Uuid::nil()).expect_err(&shown);
            assert_eq!(err.status(), 400, "{shown}");
        }
    }

    #[test]
    fn acl_errors_name_the_index() {
        let err = PolicyBody {
            acl: Some(vec!["ok".into(), "bad entry".into()]),
            ..body("ok")
        }
        .into_update()
        .expect_err("whitespace");
        assert!(err.body()["details"]["acl"]["1"].is_array(), "{}", err.body());
    }

    #[test]
    fn update_without_acl_empties_it() {
        let u = body("renamed").into_update().expect("valid");
        assert_eq!(u.name, "renamed");
        assert!(u.acl.is_empty());
    }

    #[test]
    fn inherited_policies_show_as_read_only_of_the_viewer() {
        let (master, sub) = (Uuid::new_v4(), Uuid::new_v4());
        let p = Policy {
            uuid: Uuid::new_v4(),
            tenant_uuid: master,
            name: "n".into(),
            slug: "n".into(),
            description: None,
            acl: vec!["x".into()],
            config_managed: false,
            shared: true,
        };
        let own = p.to_json(&[master]);
        assert_eq!(own["tenant_uuid"], json!(master));
        assert_eq!(own["read_only"], false);
        assert_eq!(own["shared"], true);
        let seen = p.to_json(&[sub]);
        assert_eq!(seen["tenant_uuid"], json!(sub));
        assert_eq!(seen["read_only"], true);
        assert_eq!(seen["shared"], false);
    }

    #[test]
    fn diff() {
        let old = vec!["a".to_string(), "b".to_string()];
        let new = vec!["b".to_string(), "c".to_string()];
        assert_eq!(acl_diff(&old, &new), (vec!["c"], vec!["a"]));
    }

    #[test]
    fn access_rules() {
        assert_eq!(access_problem("confd.#"), None);
        assert_eq!(access_problem("!confd.users.*.delete"), None);
        assert!(access_problem("").is_some());
        assert!(access_problem("a\tb").is_some());
        assert!(access_problem(&"a".repeat(ACCESS_MAX + 1)).is_some());
    }
}
