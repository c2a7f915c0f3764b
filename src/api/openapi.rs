//! The OpenAPI documents each API serves at `/<prefix>/api/api.yml`.

/// accent-auth 0.1, written for accentd (Swagger 2.0, as upstream serves).
pub const AUTH_SPEC: &str = include_str!("openapi/auth.yml");

#[cfg(test)]
mod tests {
    #[test]
    fn auth_spec_is_swagger_2() {
        assert!(super::AUTH_SPEC.starts_with("swagger: '2.0'"));
    }
}
