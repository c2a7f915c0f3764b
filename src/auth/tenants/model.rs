//! Tenant request/response types and validation.

use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use crate::api::error::ApiError;
use crate::auth::model::{is_valid_slug, slugify};

pub const SLUG_MAX: usize = 10;

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Address {
    #[serde(default)]
    pub line_1: Option<String>,
    #[serde(default)]
    pub line_2: Option<String>,
    #[serde(default)]
    pub city: Option<String>,
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub country: Option<String>,
    #[serde(default)]
    pub zip_code: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum AuthMethod {
    #[default]
    Native,
    Ldap,
    Saml,
}

impl AuthMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::Native => "native",
            AuthMethod::Ldap => "ldap",
            AuthMethod::Saml => "saml",
        }
    }
    pub fn parse(s: &str) -> AuthMethod {
        match s {
            "ldap" => AuthMethod::Ldap,
            "saml" => AuthMethod::Saml,
            _ => AuthMethod::Native,
        }
    }
}

/// POST /tenants and PUT /tenants/{uuid} body.
#[derive(Debug, Default, Deserialize)]
pub struct TenantBody {
    pub uuid: Option<Uuid>,
    pub name: Option<String>,
    pub slug: Option<String>,
    pub phone: Option<String>,
    pub contact: Option<Uuid>,
    #[serde(default)]
    pub address: Option<Address>,
    #[serde(default)]
    pub domain_names: Option<Vec<String>>,
    pub default_authentication_method: Option<AuthMethod>,
    pub parent_uuid: Option<Uuid>,
}

/// A validated tenant, ready to store.
#[derive(Debug, Clone, Serialize)]
pub struct Tenant {
    pub uuid: Uuid,
    pub name: Option<String>,
    pub slug: String,
    pub phone: Option<String>,
    pub contact: Option<Uuid>,
    pub address: Address,
    pub parent_uuid: Uuid,
    pub domain_names: Vec<String>,
    pub default_authentication_method: AuthMethod,
}

fn check_len(field: &str, value: &Option<String>, max: usize) -> Result<(), ApiError> {
    match value {
        Some(v) if v.chars().count() > max => Err(ApiError::invalid_field(
            field,
            format!("Longer than maximum length {max}."),
        )),
        _ => Ok(()),
    }
}

fn valid_domain(name: &str) -> bool {
    // RFC 1035-ish: labels of letters, digits and hyphens, 1..=63 chars each.
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

impl TenantBody {
    fn check(&self) -> Result<(), ApiError> {
        check_len("name", &self.name, 128)?;
        check_len("phone", &self.phone, 32)?;
        if let Some(slug) = &self.slug {
            if !is_valid_slug(slug, SLUG_MAX) {
                return Err(ApiError::invalid_field(
                    "slug",
                    "Must be 1 to 10 characters of [a-zA-Z0-9_].",
                ));
            }
        }
        if let Some(a) = &self.address {
            for (field, v) in [
                ("address.line_1", &a.line_1),
                ("address.line_2", &a.line_2),
                ("address.city", &a.city),
                ("address.state", &a.state),
                ("address.country", &a.country),
                ("address.zip_code", &a.zip_code),
            ] {
                check_len(field, v, 128)?;
            }
        }
        for d in self.domain_names.iter().flatten() {
            if !valid_domain(d) {
                return Err(ApiError::InvalidData {
                    details: json!({ "domain_names": [format!("Invalid domain name: {d}")] }),
                });
            }
        }
        Ok(())
    }

    pub fn into_new(self, default_parent: Uuid) -> Result<Tenant, ApiError> {
        self.check()?;
        let uuid = self.uuid.unwrap_or_else(Uuid::new_v4);
        let slug = match self.slug {
            Some(s) => s,
            None => slugify(self.name.as_deref().unwrap_or(&uuid.simple().to_string()), SLUG_MAX),
        };
        Ok(Tenant {
            uuid,
            name: self.name,
            slug,
            phone: self.phone,
            contact: self.contact,
            address: self.address.unwrap_or_default(),
            parent_uuid: self.parent_uuid.unwrap_or(default_parent),
            domain_names: dedup(self.domain_names.unwrap_or_default()),
            default_authentication_method: self.default_authentication_method.unwrap_or_default(),
        })
    }

    /// PUT replaces the editable fields; slug, uuid and parent stay.
    pub fn apply_to(self, mut t: Tenant) -> Result<Tenant, ApiError> {
        self.check()?;
        t.name = self.name;
        t.phone = self.phone;
        t.contact = self.contact;
        t.address = self.address.unwrap_or_default();
        if let Some(d) = self.domain_names {
            t.domain_names = dedup(d);
        }
        if let Some(m) = self.default_authentication_method {
            t.default_authentication_method = m;
        }
        Ok(t)
    }
}

fn dedup(mut v: Vec<String>) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    v.retain(|d| seen.insert(d.to_lowercase()));
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slug_derived_from_name() {
        let t = TenantBody {
            name: Some("Big Company".into()),
            ..Default::default()
        }
        .into_new(Uuid::new_v4())
        .expect("valid");
        assert_eq!(t.slug, "Big_Compan");
    }

    #[test]
    fn rejects_bad_fields() {
        let bad = [
            TenantBody {
                slug: Some("with-dash".into()),
                ..Default::default()
            },
            TenantBody {
                slug: Some("elevenchars".into()),
                ..Default::default()
            },
            TenantBody {
                name: Some("x".repeat(200)),
                ..Default::default()
            },
            TenantBody {
                domain_names: Some(vec!["bad domain".into()]),
                ..Default::default()
            },
        ];
        for b in bad {
            assert!(b.into_new(Uuid::new_v4()).is_err());
        }
    }
}
