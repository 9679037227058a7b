//! The ports holder: a deploy gives the gateway (`slipway.deploy: last`) a companion
//! container, `<service>-ports`, that owns its network namespace and published ports and runs
//! nothing but `gateway hold`. Every gateway joins that namespace, so a new one binds the same
//! port beside the old (`SO_REUSEPORT`), takes connections once warm, and the old one then
//! stops: the port never closes. `net.ipv4.tcp_migrate_req` hands the connections still
//! queued at the old listener to the new one. The holder itself is never replaced by a
//! deploy (its image and settings do not matter to the traffic).

use serde_json::{Value, json};

/// What the holder takes over from the service it holds the ports for.
#[derive(Debug, Clone)]
pub struct Holder {
    /// The service's image (its `hold` command is what the holder runs).
    image: String,
    /// The service's published ports, as the resolved model has them.
    ports: Value,
    /// The service's networks; the holder joins each under the service's name, so the
    /// others still find (and trust) the gateway by that name.
    networks: Value,
}

impl Holder {
    /// The holder for a service definition of the resolved model, if it publishes ports.
    pub fn of(def: &Value) -> Option<Self> {
        let ports = def["ports"].as_array().filter(|p| !p.is_empty())?;
        Some(Self {
            image: def["image"].as_str()?.to_string(),
            ports: Value::Array(ports.clone()),
            networks: def["networks"].clone(),
        })
    }

    /// The holder's container name within the project.
    pub fn name(service: &str) -> String {
        format!("{service}-ports")
    }

    /// The overlay's lines for `service` and its holder (JSON is YAML, so the model's values
    /// are written as they were read).
    pub fn overlay(&self, service: &str) -> String {
        let holder = Self::name(service);
        let mut networks = serde_json::Map::new();
        match &self.networks {
            Value::Object(map) => {
                for (name, settings) in map {
                    let mut settings = settings.as_object().cloned().unwrap_or_default();
                    let mut aliases =
                        settings.get("aliases").and_then(Value::as_array).cloned().unwrap_or_default();
                    aliases.push(json!(service));
                    settings.insert("aliases".into(), Value::Array(aliases));
                    networks.insert(name.clone(), Value::Object(settings));
                }
            }
            _ => {
                networks.insert("default".into(), json!({ "aliases": [service] }));
            }
        }
        let definition = json!({
            "image": self.image,
            "command": ["hold"],
            "restart": "unless-stopped",
            "cap_drop": ["ALL"],
            "security_opt": ["no-new-privileges:true"],
            "read_only": true,
            // Running is all it does; compose's `--wait` wants a check that passes.
            "healthcheck": { "test": ["CMD", "gateway", "hold", "healthcheck"], "interval": "5s" },
            "sysctls": { "net.ipv4.tcp_migrate_req": "1" },
            "ports": self.ports,
            "networks": networks,
            "labels": { "slipway.deploy": "keep" },
        });
        format!(
            "  {service}:\n    network_mode: \"service:{holder}\"\n    ports: !reset []\n    networks: !reset {{}}\n  \
             {holder}: {definition}\n"
        )
    }
}
