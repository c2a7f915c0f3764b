//! An application's writable fields: a name and where entering calls go.
//! Upstream knows one destination, `node`: a bridge calld creates with the
//! application's uuid as id, its options saying the bridge type, the music
//! on hold and whether entering calls are answered. Without a destination
//! the options are meaningless and shown as `{}`.

use serde::{Deserialize, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::api::error::ApiError;
use crate::confd::fields::{check_opt_text, check_text};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DestinationKind {
    Node,
}

/// The bridge type of the destination node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeType {
    Holding,
    Mixing,
}

impl NodeType {
    pub fn as_str(self) -> &'static str {
        match self {
            NodeType::Holding => "holding",
            NodeType::Mixing => "mixing",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeOptions {
    #[serde(rename = "type")]
    pub kind: NodeType,
    #[serde(default)]
    pub music_on_hold: Option<String>,
    #[serde(default)]
    pub answer: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Application {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub destination: Option<DestinationKind>,
    #[serde(default, serialize_with = "options_or_empty")]
    pub destination_options: Option<NodeOptions>,
}

/// No options are shown as `{}`, as upstream does.
fn options_or_empty<S: Serializer>(options: &Option<NodeOptions>, s: S) -> Result<S::Ok, S::Error> {
    match options {
        Some(o) => o.serialize(s),
        None => Map::<String, Value>::new().serialize(s),
    }
}

impl Application {
    /// Checks without the database.
    pub fn validate(&self) -> Result<(), ApiError> {
        check_opt_text("name", self.name.as_deref(), 128, "")?;
        match (&self.destination, &self.destination_options) {
            (Some(DestinationKind::Node), None) => Err(ApiError::invalid_field(
                "destination_options.type",
                "Missing data for required field.",
            )),
            (Some(DestinationKind::Node), Some(o)) => match o.music_on_hold.as_deref() {
                // The class name is passed to Asterisk as it is: no separators.
                Some(moh) => check_text("destination_options.music_on_hold", moh, 1, 128, ",;|"),
                None => Ok(()),
            },
            (None, _) => Ok(()),
        }
    }

    /// The node options when the destination is a node.
    pub fn node(&self) -> Option<&NodeOptions> {
        match self.destination {
            Some(DestinationKind::Node) => self.destination_options.as_ref(),
            None => None,
        }
    }
}

/// How a PUT body goes over the stored document: without a `node`
/// destination, options are dropped (upstream ignores them).
pub fn merge(base: &mut Map<String, Value>, body: Map<String, Value>) {
    base.extend(body);
    if base.get("destination").and_then(Value::as_str) != Some("node") {
        base.remove("destination_options");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Result<Application, String> {
        let Value::Object(body) = v else { panic!("object") };
        let mut doc = Map::new();
        merge(&mut doc, body);
        let app: Application = serde_json::from_value(Value::Object(doc)).map_err(|e| e.to_string())?;
        app.validate().map_err(|e| format!("{e:?}"))?;
        Ok(app)
    }

    #[test]
    fn destinations_and_options() {
        let app = parse(json!({"name": "x", "destination": "node",
            "destination_options": {"type": "mixing", "music_on_hold": "default", "answer": true}}))
        .expect("valid");
        assert_eq!(app.node().map(|n| n.kind), Some(NodeType::Mixing));
        let app = parse(json!({"destination": "node", "destination_options": {"type": "holding"}})).expect("valid");
        assert_eq!(
            app.node(),
            Some(&NodeOptions {
                kind: NodeType::Holding,
                music_on_hold: None,
                answer: false
            })
        );
        // Options without a node are dropped, shown as {}.
        let app = parse(json!({"destination": null, "destination_options": {"type": "bogus"}})).expect("valid");
        assert!(app.node().is_none());
        assert_eq!(
            serde_json::to_value(&app).expect("json")["destination_options"],
            json!({})
        );
        for bad in [
            json!({"destination": "queue"}),
            json!({"destination": "node"}),
            json!({"destination": "node", "destination_options": {}}),
            json!({"destination": "node", "destination_options": {"type": "bogus"}}),
            json!({"destination": "node", "destination_options": {"type": "holding", "x": 1}}),
            json!({"destination": "node", "destination_options": {"type": "holding", "answer": "yes"}}),
            json!({"destination": "node", "destination_options": {"type": "holding", "music_on_hold": "a,b"}}),
            json!({"name": "a".repeat(129)}),
            json!({"name": 3}),
            json!({"bogus": 1}),
        ] {
            assert!(parse(bad.clone()).is_err(), "{bad}");
        }
    }
}
