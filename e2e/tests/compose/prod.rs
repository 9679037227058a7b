//! docker-compose.prod.yml on one host: replicas, read-only root file systems, a non-root
//! user, secrets only as Docker secret files, no development routes.

use crate::helpers::{GATEWAY, Mode, Stack};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_compose_prod_stack_runs_replicas_read_only_as_non_root_with_secrets_only_in_files() {
    let stack = Stack::prepare(Mode::Prod).await;
    let took = stack.up(&[]).await;
    eprintln!("e2e: prod up -d --wait reached all-healthy in {took:.1?} (images warm)");

    for (service, replicas) in [("auth", 2), ("mailer", 2), ("web", 2), ("gateway", 1), ("docker-proxy", 1)] {
        let ids = stack.containers(service).await;
        assert_eq!(ids.len(), replicas, "{service} replicas");
        for id in ids {
            let seen = testkit::docker::docker(&[
                "inspect",
                "-f",
                "{{.Config.User}} {{.HostConfig.ReadonlyRootfs}} {{.State.Health.Status}}",
                &id,
            ])
            .await;
            // Only docker-proxy's group is the engine socket's, to use it.
            let user = if service == "docker-proxy" {
                format!("10001:{}", stack.docker_gid)
            } else {
                "10001:10001".into()
            };
            assert_eq!(seen, format!("{user} true healthy"), "{service} {id}");
        }
    }

    // The internet-facing gateway holds no engine socket; discovery goes through docker-proxy.
    let gateway = stack.containers("gateway").await.remove(0);
    let mounts = testkit::docker::docker(&["inspect", "-f", "{{json .Mounts}}", &gateway]).await;
    assert!(!mounts.contains("docker.sock"), "the gateway mounts no socket: {mounts}");

    // The site and the API answer through the gateway; an account starts unactivated.
    assert_eq!(stack.http.get(format!("{GATEWAY}/")).send().await.expect("GET /").status(), 200);
    let email = "prod@example.com";
    stack.signup(email).await;
    assert_eq!(stack.login(email).await.0, 403, "not activated yet");
    // No development routes in prod.
    let mail = stack.http.get(format!("{GATEWAY}/dev/mail")).send().await.expect("GET /dev/mail");
    assert_eq!(mail.status(), 404);

    // A secret reaches the services only as a file: it is in no container's environment and
    // in no log line.
    let secret = std::fs::read_to_string(stack.dir.join("secrets/auth_token_key")).expect("secret file");
    let auth = stack.containers("auth").await.remove(0);
    let inspect = testkit::docker::docker(&["inspect", &auth]).await;
    assert!(!inspect.contains(secret.trim()), "the token key is not in the container's configuration");
    let logs = stack.compose(&["logs", "--no-color"]).await;
    assert!(!logs.contains(secret.trim()), "the token key is in no log");
}
