//! User request/response types and their validation.
//!
//! Bodies follow upstream's schemas: unknown keys are ignored, `null` is
//! accepted where upstream allows it, and a PUT replaces every editable field
//! (an omitted field takes its default, as with upstream's `missing=`).

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::api::error::ApiError;
use crate::auth::model::Purpose;

pub const USERNAME_MAX: usize = 256;
pub const NAME_MAX: usize = 256;
/// Upstream has no maximum; a bound keeps hashing cost and storage sane.
pub const PASSWORD_MAX: usize = 1024;
/// RFC 5321 path limit.
pub const EMAIL_MAX: usize = 254;
const EMAIL_LOCAL_MAX: usize = 64;

/// How a user authenticates; `default` defers to its tenant's setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum UserAuthMethod {
    #[default]
    Default,
    Native,
    Ldap,
    Saml,
}

impl UserAuthMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            UserAuthMethod::Default => "default",
            UserAuthMethod::Native => "native",
            UserAuthMethod::Ldap => "ldap",
            UserAuthMethod::Saml => "saml",
        }
    }

    pub fn parse(s: &str) -> UserAuthMethod {
        match s {
            "native" => UserAuthMethod::Native,
            "ldap" => UserAuthMethod::Ldap,
            "saml" => UserAuthMethod::Saml,
            _ => UserAuthMethod::Default,
        }
    }

    /// What an omitted `authentication_method` means: service accounts only
    /// ever log in with their service key, so they are `native`.
    fn default_for(purpose: Purpose) -> UserAuthMethod {
        if purpose.is_service() {
            UserAuthMethod::Native
        } else {
            UserAuthMethod::Default
        }
    }
}

/// PUT /users/{uuid} body: the editable fields.
#[derive(Debug, Default, Deserialize)]
pub struct UserEditBody {
    pub username: Option<String>,
    pub firstname: Option<String>,
    pub lastname: Option<String>,
    pub purpose: Option<Purpose>,
    pub enabled: Option<bool>,
    pub authentication_method: Option<UserAuthMethod>,
}

/// POST /users body: the editable fields plus what only creation sets.
#[derive(Debug, Default, Deserialize)]
pub struct UserBody {
    pub uuid: Option<Uuid>,
    pub username: Option<String>,
    pub firstname: Option<String>,
    pub lastname: Option<String>,
    pub password: Option<String>,
    pub email_address: Option<String>,
    pub purpose: Option<Purpose>,
    pub enabled: Option<bool>,
    pub authentication_method: Option<UserAuthMethod>,
}

/// The editable fields of a user, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserFields {
    pub username: Option<String>,
    pub firstname: Option<String>,
    pub lastname: Option<String>,
    pub purpose: Purpose,
    pub enabled: bool,
    pub authentication_method: UserAuthMethod,
}

/// A validated POST /users body.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub uuid: Uuid,
    pub fields: UserFields,
    pub password: Option<String>,
    pub email_address: Option<String>,
}

fn too_long(field: &str, max: usize) -> ApiError {
    ApiError::invalid_field(field, format!("Longer than maximum length {max}."))
}

fn check_len(field: &str, value: Option<&str>, min: usize, max: usize) -> Result<(), ApiError> {
    match value.map(|v| v.chars().count()) {
        Some(n) if n > max => Err(too_long(field, max)),
        Some(n) if n < min => Err(ApiError::invalid_field(
            field,
            format!("Shorter than minimum length {min}."),
        )),
        _ => Ok(()),
    }
}

impl UserEditBody {
    /// The replacement fields of a PUT (or the fields of a POST).
    pub fn validate(self) -> Result<UserFields, ApiError> {
        check_len("username", self.username.as_deref(), 1, USERNAME_MAX)?;
        check_len("firstname", self.firstname.as_deref(), 0, NAME_MAX)?;
        check_len("lastname", self.lastname.as_deref(), 0, NAME_MAX)?;
        let purpose = self.purpose.unwrap_or_default();
        Ok(UserFields {
            username: self.username,
            firstname: self.firstname,
            lastname: self.lastname,
            purpose,
            enabled: self.enabled.unwrap_or(true),
            authentication_method: self
                .authentication_method
                .unwrap_or_else(|| UserAuthMethod::default_for(purpose)),
        })
    }
}

impl UserBody {
    pub fn into_new(self) -> Result<NewUser, ApiError> {
        let fields = UserEditBody {
            username: self.username,
            firstname: self.firstname,
            lastname: self.lastname,
            purpose: self.purpose,
            enabled: self.enabled,
            authentication_method: self.authentication_method,
        }
        .validate()?;
        check_len("password", self.password.as_deref(), 1, PASSWORD_MAX)?;
        let email_address = match self.email_address {
            Some(a) => Some(normalize_email("email_address", &a)?),
            None => None,
        };
        Ok(NewUser {
            uuid: self.uuid.unwrap_or_else(Uuid::new_v4),
            fields,
            password: self.password,
            email_address,
        })
    }
}

/// Whether `address` looks like a deliverable email address: one `@`, a
/// non-empty local part without spaces or controls, and a domain of valid
/// DNS labels with at least one dot (or `localhost`).
pub fn is_valid_email(address: &str) -> bool {
    if address.len() > EMAIL_MAX {
        return false;
    }
    let Some((local, domain)) = address.rsplit_once('@') else {
        return false;
    };
    let local_ok = !local.is_empty()
        && local.len() <= EMAIL_LOCAL_MAX
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && local.chars().all(|c| {
            !c.is_whitespace()
                && !c.is_control()
                && !matches!(
                    c,
                    '@' | '"' | '(' | ')' | ',' | ':' | ';' | '<' | '>' | '[' | ']' | '\\'
                )
        });
    let labels: Vec<&str> = domain.split('.').collect();
    let domain_ok = (labels.len() >= 2 || domain.eq_ignore_ascii_case("localhost"))
        && domain.len() <= 253
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    local_ok && domain_ok
}

fn normalize_email(field: &str, address: &str) -> Result<String, ApiError> {
    let address = address.trim();
    if address.chars().count() > EMAIL_MAX {
        return Err(too_long(field, EMAIL_MAX));
    }
    if !is_valid_email(address) {
        return Err(ApiError::invalid_field(field, "Not a valid email address."));
    }
    Ok(address.to_string())
}

/// An email address of a user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Email {
    pub uuid: Uuid,
    pub address: String,
    pub confirmed: bool,
    pub main: bool,
}

/// A user as the API shows it (never with its password hash).
#[derive(Debug, Clone)]
pub struct User {
    pub uuid: Uuid,
    pub tenant_uuid: Uuid,
    pub fields: UserFields,
    pub emails: Vec<Email>,
}

impl User {
    pub fn to_json(&self) -> Value {
        json!({
            "uuid": self.uuid,
            "username": self.fields.username,
            "firstname": self.fields.firstname,
            "lastname": self.fields.lastname,
            "emails": self.emails,
            "enabled": self.fields.enabled,
            "purpose": self.fields.purpose.as_str(),
            "authentication_method": self.fields.authentication_method.as_str(),
            "tenant_uuid": self.tenant_uuid,
        })
    }
}

/// PUT /users/{uuid}/password body.
#[derive(Debug, Default, Deserialize)]
pub struct PasswordBody {
    pub old_password: Option<String>,
    pub new_password: Option<String>,
}

impl PasswordBody {
    /// (old, new), both required and non-empty.
    pub fn validate(self) -> Result<(String, String), ApiError> {
        let required = |field: &str, v: Option<String>| match v {
            None => Err(ApiError::invalid_field(field, "Missing data for required field.")),
            Some(v) => check_len(field, Some(&v), 1, PASSWORD_MAX).map(|_| v),
        };
        let old = required("old_password", self.old_password)?;
        let new = required("new_password", self.new_password)?;
        Ok((old, new))
    }
}

/// One entry of PUT /users/{uuid}/emails (and the admin variant).
#[derive(Debug, Default, Deserialize)]
pub struct EmailItem {
    pub address: Option<String>,
    pub main: Option<bool>,
    /// Only honoured on the admin endpoint.
    pub confirmed: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
pub struct EmailsBody {
    pub emails: Option<Vec<EmailItem>>,
}

/// A validated email of the new list; `confirmed: None` keeps the stored
/// value of an existing address (false for a new one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailUpdate {
    pub address: String,
    pub main: bool,
    pub confirmed: Option<bool>,
}

impl EmailsBody {
    /// Validates the list; `admin` decides whether `confirmed` is honoured.
    pub fn validate(self, admin: bool) -> Result<Vec<EmailUpdate>, ApiError> {
        let Some(items) = self.emails else {
            return Err(ApiError::invalid_field("emails", "Missing data for required field."));
        };
        let mut out: Vec<EmailUpdate> = Vec::with_capacity(items.len());
        for (i, item) in items.into_iter().enumerate() {
            let field = format!("emails.{i}.address");
            let Some(address) = item.address else {
                return Err(ApiError::invalid_field(&field, "Missing data for required field."));
            };
            let address = normalize_email(&field, &address)?;
            if out.iter().any(|e| e.address.eq_ignore_ascii_case(&address)) {
                return Err(ApiError::invalid_field(
                    "_schema",
                    "The same address can only be used once",
                ));
            }
            out.push(EmailUpdate {
                address,
                main: item.main.unwrap_or(false),
                confirmed: if admin { item.confirmed } else { None },
            });
        }
        let mains = out.iter().filter(|e| e.main).count();
        if !out.is_empty() && mains != 1 {
            let msg = if mains == 0 {
                "At least one address should be main"
            } else {
                "Only one address should be main"
            };
            return Err(ApiError::invalid_field("_schema", msg));
        }
        Ok(out)
    }
}

/// A policy as listed under a user (upstream's policy object).
#[derive(Debug, Clone)]
pub struct UserPolicy {
    pub uuid: Uuid,
    pub tenant_uuid: Uuid,
    pub name: String,
    pub slug: String,
    pub description: Option<String>,
    pub acl: Vec<String>,
    pub config_managed: bool,
    pub shared: bool,
}

impl UserPolicy {
    pub fn to_json(&self) -> Value {
        json!({
            "uuid": self.uuid,
            "tenant_uuid": self.tenant_uuid,
            "name": self.name,
            "slug": self.slug,
            "description": self.description,
            "acl": self.acl,
            "read_only": self.config_managed,
            "shared": self.shared,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_upstream() {
        let u = UserBody {
            username: Some("alice".into()),
            ..Default::default()
        }
        .into_new()
        .expect("valid");
        assert_eq!(u.fields.purpose, Purpose::User);
        assert!(u.fields.enabled);
        assert_eq!(u.fields.authentication_method, UserAuthMethod::Default);
        assert!(u.password.is_none());
    }

    #[test]
    fn service_accounts_default_to_native() {
        for p in [Purpose::Internal, Purpose::ExternalApi] {
            let u = UserBody {
                username: Some("svc".into()),
                purpose: Some(p),
                ..Default::default()
            }
            .into_new()
            .expect("valid");
            assert_eq!(u.fields.authentication_method, UserAuthMethod::Native);
        }
        let explicit = UserEditBody {
            purpose: Some(Purpose::Internal),
            authentication_method: Some(UserAuthMethod::Saml),
            ..Default::default()
        }
        .validate()
        .expect("valid");
        assert_eq!(explicit.authentication_method, UserAuthMethod::Saml);
    }

    #[test]
    fn rejects_bad_fields() {
        let bad = [
            UserBody {
                username: Some(String::new()),
                ..Default::default()
            },
            UserBody {
                username: Some("u".repeat(USERNAME_MAX + 1)),
                ..Default::default()
            },
            UserBody {
                firstname: Some("f".repeat(NAME_MAX + 1)),
                ..Default::default()
            },
            UserBody {
                lastname: Some("l".repeat(NAME_MAX + 1)),
                ..Default::default()
            },
            UserBody {
                password: Some(String::new()),
                ..Default::default()
            },
            UserBody {
                password: Some("p".repeat(PASSWORD_MAX + 1)),
                ..Default::default()
            },
            UserBody {
                email_address: Some("not-an-email".into()),
                ..Default::default()
            },
        ];
        for b in bad {
            let err = b.into_new().expect_err("invalid");
            assert_eq!(err.status(), 400);
        }
    }

    #[test]
    fn put_ignores_creation_only_keys() {
        let body: UserEditBody =
            crate::api::body::parse_json(br#"{"username": "a", "password": 5, "uuid": "x", "email_address": []}"#)
                .expect("ignored");
        assert_eq!(body.validate().expect("valid").username.as_deref(), Some("a"));
    }

    #[test]
    fn username_length_counts_characters() {
        let u = UserBody {
            username: Some("é".repeat(USERNAME_MAX)),
            ..Default::default()
        };
        assert!(u.into_new().is_ok());
    }

    #[test]
    fn email_validation() {
        for ok in ["a@b.co", "first.last+tag@example.com", "x@localhost", "ü@example.com"] {
            assert!(is_valid_email(ok), "{ok}");
        }
        for bad in [
            "",
            "plain",
            "@example.com",
            "a@",
            "a@b",
            "a b@example.com",
            "a@exa mple.com",
            "a@-example.com",
            "a@example..com",
            ".a@example.com",
            "a..b@example.com",
            "a@b@c.com",
            &format!("{}@example.com", "a".repeat(65)),
            &format!("a@{}.com", "b".repeat(64)),
        ] {
            assert!(!is_valid_email(bad), "{bad}");
        }
    }

    #[test]
    fn email_address_is_trimmed() {
        let u = UserBody {
            email_address: Some("  a@example.com ".into()),
            ..Default::default()
        }
        .into_new()
        .expect("valid");
        assert_eq!(u.email_address.as_deref(), Some("a@example.com"));
    }

    #[test]
    fn password_change_requires_both() {
        let missing = PasswordBody {
            old_password: Some("a".into()),
            new_password: None,
        };
        let err = missing.validate().expect_err("missing");
        assert!(err.body()["details"]["new_password"].is_array());
        let empty = PasswordBody {
            old_password: Some(String::new()),
            new_password: Some("b".into()),
        };
        assert!(empty.validate().is_err());
        let ok = PasswordBody {
            old_password: Some("a".into()),
            new_password: Some("b".into()),
        };
        assert_eq!(ok.validate().expect("ok"), ("a".into(), "b".into()));
    }

    fn item(address: &str, main: bool, confirmed: Option<bool>) -> EmailItem {
        EmailItem {
            address: Some(address.into()),
            main: Some(main),
            confirmed,
        }
    }

    #[test]
    fn email_list_rules() {
        assert!(EmailsBody { emails: None }.validate(false).is_err());
        assert_eq!(
            EmailsBody { emails: Some(vec![]) }.validate(false).expect("empty ok"),
            vec![]
        );
        let no_main = EmailsBody {
            emails: Some(vec![item("a@x.com", false, None)]),
        };
        assert!(no_main.validate(false).is_err());
        let two_mains = EmailsBody {
            emails: Some(vec![item("a@x.com", true, None), item("b@x.com", true, None)]),
        };
        assert!(two_mains.validate(false).is_err());
        let duplicate = EmailsBody {
            emails: Some(vec![item("a@x.com", true, None), item("A@X.com", false, None)]),
        };
        assert!(duplicate.validate(false).is_err());
        let missing_address = EmailsBody {
            emails: Some(vec![EmailItem::default()]),
        };
        assert!(missing_address.validate(false).is_err());
    }

    #[test]
    fn confirmed_only_for_admins() {
        let body = || EmailsBody {
            emails: Some(vec![item("a@x.com", true, Some(true))]),
        };
        assert_eq!(body().validate(false).expect("ok")[0].confirmed, None);
        assert_eq!(body().validate(true).expect("ok")[0].confirmed, Some(true));
    }

    #[test]
    fn user_json_has_no_password() {
        let user = User {
            uuid: Uuid::new_v4(),
            tenant_uuid: Uuid::new_v4(),
            fields: UserEditBody::default().validate().expect("valid"),
            emails: vec![],
        };
        let j = user.to_json();
        assert!(j.get("password").is_none() && j.get("password_hash").is_none());
        assert_eq!(j["purpose"], "user");
        assert_eq!(j["authentication_method"], "default");
        assert_eq!(j["enabled"], true);
    }
}
