//! Bootstrapping as a user lives it: `slipway init` makes a product, `slipway new service
//! notes` adds a service, `slipway up` runs the stack, and after signup and login the new
//! service answers through the gateway at /api/notes with the caller's user id. Then, without
//! Docker, `slipway dev` runs the Python service beside the Rust ones.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use testkit::{eventually, eventually_or};
use tokio::process::Command;

use crate::helpers::{GATEWAY, PASSWORD, binary, stand_ins_of, token_in, workspace};

/// The product's name: its compose project and its images' namespace, so its containers,
/// volumes and images are its own.
const PRODUCT: &str = "bootstrap-e2e";
/// The product's image tag, so its images never replace another test's.
const TAG: &str = "bootstrap-e2e";
/// The product's compiled deployables: the platform's and the new Rust service.
const DEPLOYABLES: [&str; 6] = ["auth", "mailer", "web", "gateway", "slipway", "notes"];
/// The new services: one in Rust, one in Python.
const NEW: [&str; 2] = ["notes", "pynotes"];

/// The product's folder; dropping it stops its stack and removes its images and files.
struct Product {
    root: PathBuf,
    dir: PathBuf,
}

impl Product {
    fn new() -> Self {
        let root = std::env::temp_dir().join(format!("slipway-bootstrap-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&root).expect("a temporary folder");
        let dir = root.join(PRODUCT);
        Self { root, dir }
    }
}

impl Drop for Product {
    fn drop(&mut self) {
        if self.dir.join("docker-compose.yml").exists() {
            let _ = std::process::Command::new("docker")
                .current_dir(&self.dir)
                .args(["compose", "down", "-v", "--remove-orphans", "--timeout", "5"])
                .output();
        }
        for name in DEPLOYABLES.iter().chain(&NEW) {
            let _ = std::process::Command::new("docker")
                .args(["image", "rm", &format!("{PRODUCT}/{name}:{TAG}")])
                .output();
        }
        // The layers those images left dangling, and only ours.
        let _ = std::process::Command::new("docker")
            .args(["image", "prune", "-f", "--filter", "label=org.slipway.image"])
            .output();
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// Runs `program args` in `dir` with `vars`; its output, or a failed test showing it.
async fn run(program: &Path, dir: &Path, args: &[&str], vars: &[(&str, &str)]) -> String {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .envs(vars.iter().copied())
        .output()
        .await
        .unwrap_or_else(|e| panic!("{} runs: {e}", program.display()));
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{} {}:\n{text}", program.display(), args.join(" "));
    text
}

fn cargo() -> PathBuf {
    std::env::var_os("CARGO").map_or_else(|| PathBuf::from("cargo"), PathBuf::from)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_product_from_init_gains_a_service_that_answers_through_the_gateway_with_the_callers_user_id() {
    testkit::docker::engine().await;
    stand_ins_of(&["debian", "postgres", "python"]).await;
    run(
        &cargo(),
        &workspace(),
        &["build", "--quiet", "--locked", "-p", "slipway-cli", "--bin", "slipway"],
        &[],
    )
    .await;
    let product = Product::new();
    let dir = product.dir.clone();
    let dir_arg = dir.to_str().expect("a UTF-8 path");
    run(&binary("slipway"), &workspace(), &["init", dir_arg], &[]).await;

    // A build-dir of the product's own, with this run's compiled dependencies (not this run's
    // build-dir itself: the product's crates would replace this run's, testkit::build_dir).
    let build_dir = product.root.join("build");
    let this_build = binary("slipway").ancestors().nth(2).expect("this build's target folder").to_path_buf();
    testkit::seed_build_dir(&workspace(), &this_build, &build_dir);

    // From here the clock runs: what a user waits for between deciding on a service and its
    // first answer.
    let started = Instant::now();
    run(&binary("slipway"), &dir, &["new", "service", "notes"], &[]).await;
    run(&binary("slipway"), &dir, &["new", "service", "pynotes", "--lang", "python"], &[]).await;
    // The product's binaries, compiled on this machine (as `cargo slipway` compiles its CLI)
    // with its dependencies compiled already (warm caches); `slipway up` then builds the
    // images from them (BINARIES=prebuilt) instead of compiling in a container.
    let compiling = Instant::now();
    let mut build = vec!["build", "--quiet", "--locked", "--bins"];
    for name in DEPLOYABLES {
        build.extend(["-p", if name == "slipway" { "slipway-cli" } else { name }]);
    }
    let target = dir.join("target");
    run(
        &cargo(),
        &dir,
        &build,
        &[
            ("CARGO_TARGET_DIR", target.to_str().expect("UTF-8")),
            ("CARGO_BUILD_BUILD_DIR", build_dir.to_str().expect("UTF-8")),
        ],
    )
    .await;
    let compiled = compiling.elapsed();
    std::fs::create_dir_all(target.join("docker-bin")).expect("target/docker-bin");
    for name in DEPLOYABLES {
        std::fs::copy(target.join("debug").join(name), target.join("docker-bin").join(name))
            .unwrap_or_else(|e| panic!("copy {name}: {e}"));
    }

    // The README's first command, in the product's folder.
    let upping = Instant::now();
    let cli = target.join("debug/slipway");
    run(&cli, &dir, &["up"], &[("SLIPWAY_BINARIES", "prebuilt"), ("SLIPWAY_TAG", TAG)]).await;
    let up = upping.elapsed();
    for name in NEW {
        testkit::docker::docker(&["image", "inspect", "-f", "{{.Id}}", &format!("{PRODUCT}/{name}:{TAG}")])
            .await;
    }

    let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().expect("client");
    let signup_page = http.get(format!("{GATEWAY}/signup")).send().await.expect("GET /signup");
    assert_eq!(signup_page.status(), 200, "the product's signup page");
    assert!(signup_page.text().await.expect("html").contains("<form"), "a form to sign up with");

    // Signup, the activation link from the dev mailbox, login.
    let email = "first@example.com";
    let credentials = json!({ "email": email, "password": PASSWORD });
    let res =
        http.post(format!("{GATEWAY}/api/auth/signup")).json(&credentials).send().await.expect("signup");
    assert!(res.status().is_success(), "signup: {}", res.status());
    let mut token = None;
    eventually(Duration::from_secs(60), "the activation email in the dev mailbox", async || {
        let page = http.get(format!("{GATEWAY}/dev/mail")).send().await;
        let Ok(page) = page else { return false };
        token = token_in(&page.text().await.unwrap_or_default());
        token.is_some()
    })
    .await;
    let res = http
        .post(format!("{GATEWAY}/api/auth/activation"))
        .json(&json!({ "token": token }))
        .send()
        .await
        .expect("activation");
    assert_eq!(res.status(), 200, "activation");
    let res = http.post(format!("{GATEWAY}/api/auth/login")).json(&credentials).send().await.expect("login");
    assert_eq!(res.status(), 200, "login");
    let body: Value = res.json().await.expect("json");
    let access = body["access_token"].as_str().expect("an access token").to_string();
    let me: Value = http
        .get(format!("{GATEWAY}/api/auth/me"))
        .bearer_auth(&access)
        .send()
        .await
        .expect("me")
        .json()
        .await
        .expect("json");

    // The new services, through the gateway, know who is asking.
    for name in NEW {
        let res = http.get(format!("{GATEWAY}/api/{name}")).bearer_auth(&access).send().await.expect("GET");
        assert_eq!(res.status(), 200, "{name} through the gateway");
        let body: Value = res.json().await.expect("json");
        assert_eq!(body["service"], name);
        assert_eq!(body["user_id"], me["id"], "{name}: the caller's user id, verified at the edge");
    }
    let answered = started.elapsed();
    eprintln!(
        "e2e: from `slipway new service` (notes in Rust, pynotes in Python) to their first answers through the \
         gateway in {answered:.1?} (compiling {compiled:.1?}, slipway up {up:.1?})"
    );

    for name in NEW {
        // Protected by default: no token, no entry (the gateway answers, not the service).
        let res = http.get(format!("{GATEWAY}/api/{name}")).send().await.expect("GET without a token");
        assert_eq!(res.status(), 401, "{name} without a token");
        // Its own schema and the bus: an item stored, and its event published in that transaction.
        let post = async |text: &str| {
            let url = format!("{GATEWAY}/api/{name}/items");
            let res = http.post(url).bearer_auth(&access).json(&json!({ "text": text })).send().await;
            res.expect("POST items")
        };
        assert_eq!(post("first note").await.status(), 201, "{name}: an item stored");
        let res = post("").await;
        assert_eq!(res.status(), 422, "{name}: bad input is refused");
        assert_eq!(res.headers()["content-type"], "application/problem+json");
        eventually(Duration::from_secs(30), "the new service to handle its own event", async || {
            run(Path::new("docker"), &dir, &["compose", "logs", "--no-color", name], &[])
                .await
                .contains("item seen on the bus")
        })
        .await;
    }

    // Without Docker: `slipway dev` runs the Python service as a child process beside the Rust
    // ones, its migrations applied, on a throwaway Postgres (the stack stops first: dev takes
    // the same ports).
    run(Path::new("docker"), &dir, &["compose", "down", "-v", "--timeout", "5"], &[]).await;
    // Every listener on a port of its own: nothing left over from the stack (or another
    // test) can stand in the way.
    let ports: Vec<(String, String)> =
        ["AUTH", "MAILER", "WEB", "GATEWAY", "GATEWAY_ADMIN", "NOTES", "PYNOTES"]
            .iter()
            .map(|scope| (format!("SLIPWAY_{scope}_PORT"), testkit::free_port().to_string()))
            .collect();
    let port = &ports.last().expect("pynotes's port").1;
    let url = format!("http://127.0.0.1:{port}");
    let log = product.root.join("dev.log");
    let spawn_dev = || {
        let out = std::fs::File::options().create(true).append(true).open(&log).expect("dev.log");
        Command::new(&cli)
            .arg("dev")
            .current_dir(&dir)
            // The test run's own settings (SLIPWAY_TEST_RUN, …) are not the product's: `slipway
            // dev` rightly refuses a setting it does not know (what failed this test in CI).
            .env_clear()
            .envs(std::env::vars().filter(|(k, _)| !k.starts_with("SLIPWAY_") && k != "DATABASE_URL"))
            .envs(ports.iter().map(|(k, v)| (k, v)))
            .stdout(out.try_clone().expect("dev.log"))
            .stderr(out)
            .kill_on_drop(true)
            .spawn()
            .expect("slipway dev starts")
    };
    let dev_log = || std::fs::read_to_string(&log).unwrap_or_default();
    let ready = async || http.get(format!("{url}/readyz")).send().await.is_ok_and(|r| r.status() == 200);
    let pid_of = |dev: &tokio::process::Child| {
        nix::unistd::Pid::from_raw(i32::try_from(dev.id().expect("running")).expect("a pid"))
    };
    let mut dev = spawn_dev();
    eventually_or(Duration::from_secs(90), "pynotes ready under slipway dev", ready, || {
        format!("slipway dev's output:\n{}", dev_log())
    })
    .await;
    let res = http
        .post(format!("{url}/items"))
        .header("x-user-id", uuid::Uuid::new_v4().to_string())
        .json(&json!({ "text": "from slipway dev" }))
        .send()
        .await
        .expect("POST items under slipway dev");
    assert_eq!(res.status(), 201, "{}", dev_log());
    eventually_or(
        Duration::from_secs(30),
        "pynotes to handle its event under slipway dev",
        async || dev_log().contains("item seen on the bus"),
        || format!("slipway dev's output:\n{}", dev_log()),
    )
    .await;
    nix::sys::signal::kill(pid_of(&dev), nix::sys::signal::Signal::SIGTERM).expect("SIGTERM slipway dev");
    let status =
        tokio::time::timeout(Duration::from_secs(60), dev.wait()).await.expect("dev stops").expect("wait");
    assert!(status.success(), "slipway dev stops cleanly on SIGTERM: {status}\n{}", dev_log());

    // Killed outright, `slipway dev` cannot stop its children: the Python service notices its
    // parent is gone and stops, so no orphan keeps its port.
    let mut dev = spawn_dev();
    eventually_or(Duration::from_secs(90), "pynotes ready under slipway dev again", ready, || {
        format!("slipway dev's output:\n{}", dev_log())
    })
    .await;
    nix::sys::signal::kill(pid_of(&dev), nix::sys::signal::Signal::SIGKILL).expect("SIGKILL slipway dev");
    dev.wait().await.expect("wait");
    // Its throwaway Postgres goes too (devdb's watchdog), rather than run on as an orphan.
    let log = dev_log();
    let postgres = log
        .rsplit("Postgres at postgres://postgres@127.0.0.1:")
        .next()
        .and_then(|rest| rest.split('/').next())
        .and_then(|port| port.parse::<u16>().ok())
        .expect("dev names its throwaway Postgres's port");
    eventually_or(
        Duration::from_secs(15),
        "the throwaway Postgres to stop once slipway dev was killed",
        async || std::net::TcpStream::connect(("127.0.0.1", postgres)).is_err(),
        || format!("slipway dev's output:\n{}", dev_log()),
    )
    .await;
    eventually_or(
        Duration::from_secs(15),
        "pynotes to stop once slipway dev was killed",
        async || std::net::TcpStream::connect(("127.0.0.1", port.parse::<u16>().expect("a port"))).is_err(),
        || format!("slipway dev's output:\n{}", dev_log()),
    )
    .await;
}
