//! A device record: what confd knows of a phone (provd keeps its
//! configuration). Its `id` is a 32-hex-digit string, as provd's.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::api::error::ApiError;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceOptions {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub switchboard: Option<bool>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Device {
    /// Server-set (from the row's uuid); a body's `id` is ignored.
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub mac: Option<String>,
    #[serde(default)]
    pub ip: Option<String>,
    #[serde(default)]
    pub sn: Option<String>,
    #[serde(default)]
    pub vendor: Option<String>,
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub plugin: Option<String>,
    #[serde(default)]
    pub template_id: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub options: Option<DeviceOptions>,
}

/// `aa:bb:cc:dd:ee:ff` (or with `-`, any case) in its canonical lowercase form.
pub fn normalize_mac(mac: &str) -> Option<String> {
    let parts: Vec<&str> = mac.split([':', '-']).collect();
    if parts.len() != 6 || mac.contains(':') && mac.contains('-') {
        return None;
    }
    if !parts
        .iter()
        .all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        return None;
    }
    Some(parts.join(":").to_ascii_lowercase())
}

fn text(field: &str, value: &Option<String>, max: usize, charset: Option<&[u8]>) -> Result<(), ApiError> {
    if let Some(v) = value {
        let bad_chars = match charset {
            Some(extra) => !v.bytes().all(|b| b.is_ascii_alphanumeric() || extra.contains(&b)),
            None => v.chars().any(char::is_control),
        };
        if v.chars().count() > max || bad_chars {
            return Err(ApiError::invalid_field(
                field,
                format!("String does not match expected pattern (at most {max} characters)."),
            ));
        }
    }
    Ok(())
}

impl Device {
    /// Normalizes the MAC address.
    pub fn normalize(&mut self) {
        if let Some(mac) = &self.mac {
            if let Some(n) = normalize_mac(mac) {
                self.mac = Some(n);
            }
        }
    }

    pub fn validate(&self) -> Result<(), ApiError> {
        if let Some(mac) = &self.mac {
            if normalize_mac(mac).as_deref() != Some(mac.as_str()) {
                return Err(ApiError::invalid_field(
                    "mac",
                    "Invalid MAC address (expected aa:bb:cc:dd:ee:ff).",
                ));
            }
        }
        if let Some(ip) = &self.ip {
            if ip.parse::<IpAddr>().is_err() {
                return Err(ApiError::invalid_field("ip", "Not a valid IP address."));
            }
        }
        text("sn", &self.sn, 128, None)?;
        text("vendor", &self.vendor, 128, None)?;
        text("model", &self.model, 128, None)?;
        text("version", &self.version, 64, None)?;
        text("plugin", &self.plugin, 128, Some(b"_-."))?;
        text("template_id", &self.template_id, 128, Some(b"_-."))?;
        text("description", &self.description, 1024, None)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs() {
        assert_eq!(normalize_mac("AA-bb-CC-00-11-22").as_deref(), Some("aa:bb:cc:00:11:22"));
        for bad in [
            "",
            "aa:bb:cc:dd:ee",
            "aa:bb:cc:dd:ee:fg",
            "aa:bb-cc:dd:ee:ff",
            "aaa:bb:cc:dd:ee:f",
        ] {
            assert!(normalize_mac(bad).is_none(), "{bad}");
        }
    }
}
