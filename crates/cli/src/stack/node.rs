//! Postgres's node on Swarm: Postgres keeps its data, and the backup service its repository,
//! in volumes local to one node, so both are placed on the node labelled
//! `slipway.postgres=true`. A one-node swarm gets the label at the first deploy; on a larger
//! one the user chooses the node, because a wrong guess would start an empty database.

use crate::Failure;

/// The label the prod and backup files' placement constraints ask for.
pub const LABEL: &str = "slipway.postgres";

/// A node of the swarm, as `docker node inspect` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub id: String,
    pub hostname: String,
    pub labelled: bool,
}

/// What to do before deploying.
#[derive(Debug, PartialEq, Eq)]
pub enum Placement {
    /// A node has the label already: Postgres runs there.
    Labelled(Node),
    /// The only node: label it.
    Label(Node),
}

/// The node Postgres runs on, or why no node can be chosen.
pub fn choose(nodes: &[Node]) -> Result<Placement, String> {
    let labelled: Vec<&Node> = nodes.iter().filter(|n| n.labelled).collect();
    let names = |ns: &[&Node]| ns.iter().map(|n| n.hostname.as_str()).collect::<Vec<_>>().join(", ");
    match (labelled.as_slice(), nodes) {
        ([one], _) => Ok(Placement::Labelled((*one).clone())),
        ([], [only]) => Ok(Placement::Label(only.clone())),
        ([], []) => Err("the swarm lists no nodes".into()),
        ([], _) => Err(format!(
            "Postgres keeps its data in a volume on one node, so the stack needs to know which: \
             label it with `docker node update --label-add {LABEL}=true NODE` (nodes: {})",
            names(&nodes.iter().collect::<Vec<_>>())
        )),
        (many, _) => Err(format!(
            "{} nodes are labelled {LABEL}=true ({}): Postgres's data is on one of them; remove \
             the label from the others with `docker node update --label-rm {LABEL} NODE`",
            many.len(),
            names(many)
        )),
    }
}

/// `docker args…`: stdout, or a failure saying what was being done.
fn docker(args: &[&str], doing: &str) -> Result<String, Failure> {
    let out = std::process::Command::new("docker")
        .args(args)
        .output()
        .map_err(|e| anyhow::anyhow!("cannot run docker ({e}): install Docker Engine"))?;
    if !out.status.success() {
        return Err(anyhow::anyhow!("{doing} failed: {}", String::from_utf8_lossy(&out.stderr).trim()).into());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The swarm's nodes, through this engine (a manager).
fn nodes() -> Result<Vec<Node>, Failure> {
    let ids = docker(
        &["node", "ls", "--quiet"],
        "listing the swarm's nodes (this engine must be a Swarm manager: `docker swarm init`)",
    )?;
    let ids: Vec<&str> = ids.split_whitespace().collect();
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let format =
        format!("{{{{.ID}}}}\t{{{{.Description.Hostname}}}}\t{{{{index .Spec.Labels \"{LABEL}\"}}}}");
    let args = [&["node", "inspect", "--format", format.as_str()][..], &ids].concat();
    let listed = docker(&args, "inspecting the swarm's nodes")?;
    Ok(listed
        .lines()
        .filter_map(|l| {
            let mut fields = l.split('\t');
            let (id, hostname) = (fields.next()?, fields.next()?);
            let labelled = fields.next().is_some_and(|v| v.trim() == "true");
            Some(Node { id: id.to_string(), hostname: hostname.to_string(), labelled })
        })
        .collect())
}

/// Makes sure one node carries the label, labelling the only node of a one-node swarm.
pub fn ensure() -> Result<(), Failure> {
    match choose(&nodes()?).map_err(Failure::Refused)? {
        Placement::Labelled(node) => println!("Postgres runs on {} (labelled {LABEL}=true)", node.hostname),
        Placement::Label(node) => {
            docker(
                &["node", "update", "--label-add", &format!("{LABEL}=true"), &node.id],
                "labelling the node for Postgres",
            )?;
            println!("Postgres runs on {}, the swarm's only node (now labelled {LABEL}=true)", node.hostname);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{Node, Placement, choose};

    fn node(name: &str, labelled: bool) -> Node {
        Node { id: format!("id-{name}"), hostname: name.into(), labelled }
    }

    #[test]
    fn the_only_node_of_a_swarm_is_labelled() {
        assert_eq!(choose(&[node("a", false)]), Ok(Placement::Label(node("a", false))));
    }

    #[test]
    fn the_labelled_node_is_kept_whatever_the_others() {
        let nodes = [node("a", false), node("b", true), node("c", false)];
        assert_eq!(choose(&nodes), Ok(Placement::Labelled(node("b", true))));
    }

    #[test]
    fn several_unlabelled_nodes_are_refused_with_the_command_and_their_names() {
        let e = choose(&[node("a", false), node("b", false)]).expect_err("refused");
        assert!(e.contains("docker node update --label-add slipway.postgres=true NODE"), "{e}");
        assert!(e.contains("nodes: a, b"), "{e}");
    }

    #[test]
    fn two_labelled_nodes_are_refused_naming_both() {
        let e = choose(&[node("a", true), node("b", true), node("c", false)]).expect_err("refused");
        assert!(e.contains("2 nodes are labelled") && e.contains("(a, b)"), "{e}");
    }
}
