//! What of a container listing or inspection the proxy passes on: the fields discovery reads
//! (ids, names, labels, state, exposed ports, network addresses), nothing else.

use serde_json::{Map, Value};

/// Copies the named keys of an object (missing ones are skipped).
fn keep(from: &Value, keys: &[&str]) -> Value {
    let mut out = Map::new();
    for key in keys {
        if let Some(v) = from.get(*key) {
            out.insert((*key).to_string(), v.clone());
        }
    }
    Value::Object(out)
}

/// `GET /containers/json`: each container's id, names, labels and state.
pub fn listing(doc: &Value) -> Value {
    let containers = doc
        .as_array()
        .map(|a| a.iter().map(|c| keep(c, &["Id", "Names", "Labels", "State", "Status"])).collect());
    Value::Array(containers.unwrap_or_default())
}

/// `GET /containers/{id}/json`: identity, state, labels, exposed ports and networks.
pub fn inspection(doc: &Value) -> Value {
    let mut out = keep(doc, &["Id", "Name", "Created", "State"]);
    if let (Some(map), Some(config)) = (out.as_object_mut(), doc.get("Config")) {
        map.insert("Config".into(), keep(config, &["Hostname", "Image", "Labels", "ExposedPorts"]));
    }
    if let (Some(map), Some(net)) = (out.as_object_mut(), doc.get("NetworkSettings")) {
        map.insert("NetworkSettings".into(), keep(net, &["Networks", "Ports", "IPAddress"]));
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn environment_command_and_mounts_never_pass() {
        let doc = json!({
            "Id": "abc", "Name": "/auth-1", "State": { "Running": true }, "Path": "auth", "Args": ["--secret"],
            "Config": { "Env": ["SLIPWAY_DATABASE_PASSWORD=hunter2"], "Labels": { "slipway.port": "8081" },
                        "Cmd": ["auth"], "Hostname": "abc" },
            "HostConfig": { "Binds": ["/:/host"] }, "Mounts": [{ "Source": "/run/secrets" }],
            "NetworkSettings": { "Networks": { "slipway_default": { "IPAddress": "172.18.0.5" } } },
        });
        let kept = inspection(&doc);
        let text = kept.to_string();
        for secret in ["hunter2", "Env", "Args", "Binds", "Mounts", "Cmd"] {
            assert!(!text.contains(secret), "{secret} passed: {text}");
        }
        assert_eq!(kept["Config"]["Labels"]["slipway.port"], "8081");
        assert_eq!(kept["NetworkSettings"]["Networks"]["slipway_default"]["IPAddress"], "172.18.0.5");
        let listed =
            listing(&json!([{ "Id": "abc", "Command": "auth --secret", "Mounts": [], "Labels": {} }]));
        assert_eq!(listed, json!([{ "Id": "abc", "Labels": {} }]));
    }
}
