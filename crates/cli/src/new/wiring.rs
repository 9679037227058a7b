//! The edits that wire a new service into the project: the workspace, the CLI's registry,
//! the scopes, the Dockerfile, the image lists, the secrets, the three compose files, the NATS
//! overlay and the README. Each finds its place by a line the file is known to have, and
//! fails, naming the file, when it is not there: then nothing is written.

use super::{Lang, Plan};

/// An edit of one file: its path and what it does to the text.
pub(super) type Edit = (&'static str, fn(&str, &Plan) -> Result<String, String>);

/// Every edit, in the order the checklist (docs/adding-a-service.md) gives them.
pub(super) const EDITS: &[Edit] = &[
    ("Cargo.toml", workspace),
    ("crates/project/src/lib.rs", scopes),
    ("crates/cli/Cargo.toml", cli_dependency),
    ("crates/cli/src/registry.rs", registry),
    ("crates/cli/src/env.rs", secret_files),
    ("Dockerfile", dockerfile),
    ("xtask/src/images.rs", image_list),
    ("e2e/tests/compose/helpers.rs", e2e_lists),
    ("docker-compose.yml", compose_base),
    ("docker-compose.override.yml", compose_dev),
    ("docker-compose.prod.yml", compose_prod),
    ("docker-compose.nats.yml", compose_nats),
    ("README.md", readme),
];

/// Inserts `new` after the last line `anchor` accepts.
fn after_last(text: &str, anchor: impl Fn(&str) -> bool, new: &str, what: &str) -> Result<String, String> {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let at = lines.iter().rposition(|l| anchor(l.trim_end())).ok_or_else(|| format!("no {what}"))?;
    let mut out: String = lines[..=at].concat();
    out.push_str(new);
    out.push_str(&lines[at + 1..].concat());
    Ok(out)
}

/// Inserts `new` before the first line equal to `anchor`, and before the comment lines right
/// above it (which belong to it).
fn before_line(text: &str, anchor: &str, new: &str) -> Result<String, String> {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let mut at =
        lines.iter().position(|l| l.trim_end() == anchor).ok_or_else(|| format!("no line {anchor:?}"))?;
    while at > 0 && lines[at - 1].trim_start().starts_with('#') {
        at -= 1;
    }
    Ok(format!("{}{new}{}", lines[..at].concat(), lines[at..].concat()))
}

/// Replaces the one occurrence of `from`.
fn replace_once(text: &str, from: &str, to: &str) -> Result<String, String> {
    match text.matches(from).count() {
        1 => Ok(text.replacen(from, to, 1)),
        n => Err(format!("expected {from:?} once, found it {n} times")),
    }
}

/// `[&str; N] = [..., "last"]` with `item` before `"last"` and N one higher.
fn grow_array(text: &str, decl: &str, last: &str, item: &str) -> Result<String, String> {
    let start = text.find(decl).ok_or_else(|| format!("no {decl}"))?;
    let rest = &text[start + decl.len()..];
    let n_end = rest.find(']').ok_or_else(|| format!("no length after {decl}"))?;
    let n: usize = rest[..n_end].trim().parse().map_err(|_| format!("no length after {decl}"))?;
    let old_head = format!("{decl}{}]", &rest[..n_end]);
    let text = replace_once(text, &old_head, &format!("{decl} {}]", n + 1))?;
    let start = text.find(decl).unwrap_or(0);
    let close = text[start..].find("];").map(|i| start + i).ok_or_else(|| format!("no end of {decl}"))?;
    let body = &text[start..close];
    let at = body.rfind(last).map(|i| start + i).ok_or_else(|| format!("no {last} in {decl}"))?;
    Ok(format!("{}{item}{}", &text[..at], &text[at..]))
}

fn workspace(text: &str, p: &Plan) -> Result<String, String> {
    if p.lang == Lang::Python {
        // Not a crate: out of the `services/*` members.
        let entry = format!("\"services/{}\"", p.name);
        return match text.lines().find(|l| l.starts_with("exclude = [")) {
            Some(line) => {
                let grown =
                    line.replacen("exclude = [", &format!("exclude = [{entry}, "), 1).replace(", ]", "]");
                replace_once(text, line, &grown)
            }
            None => after_last(
                text,
                |l| l.starts_with("members = ["),
                &format!("exclude = [{entry}]\n"),
                "members line",
            ),
        };
    }
    if text.lines().any(|l| l.split('=').next().is_some_and(|k| k.trim() == p.name.as_str())) {
        return Err(format!("the workspace already has a dependency called {}: choose another name", p.name));
    }
    let line = format!("{n} = {{ path = \"services/{n}\" }}\n", n = p.name);
    after_last(text, |l| l.contains("= { path = \"services/"), &line, "service dependency line")
}

fn scopes(text: &str, p: &Plan) -> Result<String, String> {
    let decl = "pub const SCOPES: &[&str] = &[";
    let start = text.find(decl).ok_or("no SCOPES")?;
    let close = text[start..].find("];").map(|i| start + i).ok_or("no end of SCOPES")?;
    Ok(format!("{}, \"{}\"{}", &text[..close], p.name.scope(), &text[close..]))
}

fn cli_dependency(text: &str, p: &Plan) -> Result<String, String> {
    if p.lang == Lang::Python {
        return Ok(text.to_string());
    }
    after_last(
        text,
        |l| l == "gateway.workspace = true",
        &format!("{}.workspace = true\n", p.name),
        "gateway dependency",
    )
}

fn registry(text: &str, p: &Plan) -> Result<String, String> {
    let gateway = "    &Of::<gateway::Config>(PhantomData),\n";
    let line = match p.lang {
        Lang::Rust => format!("    &Of::<{}::Config>(PhantomData),\n", p.name),
        Lang::Python => {
            format!("    external!(\"{n}\", {}, \"../../services/{n}/migrations\"),\n", p.port, n = p.name)
        }
    };
    replace_once(text, gateway, &format!("{line}{gateway}"))
}

fn secret_files(text: &str, p: &Plan) -> Result<String, String> {
    if !p.db {
        return Ok(text.to_string());
    }
    grow_array(
        text,
        "pub const SECRET_FILES: [&str;",
        "\"auth_token_key\"",
        &format!("\"{}_database_password\",\n    ", p.name),
    )
}

fn dockerfile(text: &str, p: &Plan) -> Result<String, String> {
    let n = p.name.as_str();
    if p.lang == Lang::Python {
        return before_line(text, "FROM runtime AS slipway", &python_stage(p));
    }
    let text = replace_once(text, " -p slipway-cli", &format!(" -p {n} -p slipway-cli"))?;
    let text =
        replace_once(&text, "\"$out/slipway\" /out/", &format!("\"$out/{n}\" \"$out/slipway\" /out/"))?;
    let stage = format!(
        "FROM runtime AS {n}\nCOPY --from=binaries /out/{n} /usr/local/bin/{n}\nEXPOSE {port}\n\
         HEALTHCHECK --interval=5s --timeout=3s --start-period=60s --retries=3 CMD [\"{n}\", \"healthcheck\"]\n\
         ENTRYPOINT [\"{n}\"]\n\n",
        port = p.port
    );
    before_line(&text, "FROM runtime AS slipway", &stage)
}

/// A Python service's image: the official Python image, its pinned PyPI packages, its app,
/// the same non-root user, listener and health check as the Rust services'.
fn python_stage(p: &Plan) -> String {
    format!(
        "FROM python:3.11-slim-bookworm AS {n}\nLABEL org.slipway.image=\"true\"\n\
         RUN useradd --system --uid 10001 --user-group --no-create-home --home-dir /nonexistent \\\n        \
         --shell /usr/sbin/nologin slipway\n\
         COPY services/{n}/requirements.txt /app/requirements.txt\n\
         RUN pip install --no-cache-dir --disable-pip-version-check --root-user-action=ignore -r /app/requirements.txt\n\
         COPY services/{n}/app.py /app/app.py\n\
         ENV SLIPWAY_HOST=0.0.0.0 PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1\n\
         USER 10001:10001\nWORKDIR /nonexistent\nSTOPSIGNAL SIGTERM\nEXPOSE {port}\n\
         HEALTHCHECK --interval=5s --timeout=3s --start-period=60s --retries=3 CMD [\"python3\", \"/app/app.py\", \"healthcheck\"]\n\
         ENTRYPOINT [\"python3\", \"/app/app.py\"]\n\n",
        n = p.name,
        port = p.port
    )
}

fn image_list(text: &str, p: &Plan) -> Result<String, String> {
    grow_array(text, "const TARGETS: [&str;", "\"slipway\"", &format!("\"{}\", ", p.name))
}

fn e2e_lists(text: &str, p: &Plan) -> Result<String, String> {
    let text = grow_array(text, "const IMAGES: [&str;", "\"slipway\"", &format!("\"{}\", ", p.name))?;
    if p.lang == Lang::Python {
        return Ok(text); // an image, but no binary to compile
    }
    replace_once(&text, "\"slipway-cli\"", &format!("\"{}\", \"-p\", \"slipway-cli\"", p.name))
}

fn compose_base(text: &str, p: &Plan) -> Result<String, String> {
    let (n, scope) = (p.name.as_str(), p.name.scope());
    let protected = if p.public {
        "      # Public: the gateway passes requests on without checking an access token.\n      slipway.protected: \"false\"\n"
    } else {
        "      # The gateway verifies the caller's access token and passes the user id as X-User-Id.\n      slipway.protected: \"true\"\n"
    };
    let database = if p.db {
        format!(
            "      <<: *database\n      SLIPWAY_{scope}_DATABASE_ROLE: slipway_{n}\n      \
             SLIPWAY_{scope}_DATABASE_ROLE_PASSWORD_FILE: /run/secrets/{n}_database_password\n"
        )
    } else {
        "      SLIPWAY_RELEASE: ${SLIPWAY_TAG:-dev}\n".to_string()
    };
    let secrets = if p.db { format!("    secrets: [{n}_database_password]\n") } else { String::new() };
    // Without a database it needs no migrate job; the shared anchor waits for one.
    let base = if p.db {
        "    <<: *service\n".to_string()
    } else {
        "    restart: unless-stopped\n    env_file: [.env]\n    cap_drop: [ALL]\n    security_opt: [\"no-new-privileges:true\"]\n".to_string()
    };
    let service = format!(
        "  {n}:\n{base}    image: {images}/{n}:${{SLIPWAY_TAG:-latest}}\n    \
         build: {{ context: ., target: {n}, args: {{ BINARIES: \"${{SLIPWAY_BINARIES:-build}}\" }} }}\n    \
         environment:\n{database}      SLIPWAY_TRUSTED_PROXIES: gateway\n{secrets}    labels:\n      \
         slipway.path: /api/{n}\n      slipway.strip_prefix: \"true\"\n      slipway.port: \"{port}\"\n\
         {protected}      slipway.deploy: blue-green\n\n",
        port = p.port,
        images = p.images
    );
    let text = before_line(text, "  migrate:", &service)?;
    if !p.db {
        return Ok(text);
    }
    // The migrate job creates the service's role with its password.
    let migrate = text.find("\n  migrate:\n").ok_or("no migrate service")?;
    let end = text[migrate + 1..]
        .find("\n  postgres:")
        .map(|i| migrate + 1 + i)
        .ok_or("no postgres service after migrate")?;
    let section = &text[migrate..end];
    let role_lines = format!(
        "      SLIPWAY_{scope}_DATABASE_ROLE: slipway_{n}\n      SLIPWAY_{scope}_DATABASE_ROLE_PASSWORD_FILE: /run/secrets/{n}_database_password\n"
    );
    let section = after_last(
        section,
        |l| l.contains("_DATABASE_ROLE_PASSWORD_FILE:"),
        &role_lines,
        "role in the migrate job",
    )?;
    let secrets_at = section.find("    secrets: [").ok_or("no secrets list in the migrate job")?;
    let close = section[secrets_at..]
        .find(']')
        .map(|i| secrets_at + i)
        .ok_or("no end of the migrate job's secrets")?;
    let section = format!("{}, {n}_database_password{}", &section[..close], &section[close..]);
    let text = format!("{}{section}{}", &text[..migrate], &text[end..]);
    // And the secret itself.
    let secret = format!("  {n}_database_password: {{ file: ./secrets/{n}_database_password }}\n");
    after_last(
        &text,
        |l| l.starts_with("  ") && l.contains("_database_password: { file: ./secrets/"),
        &secret,
        "top-level database password secret",
    )
}

fn compose_dev(text: &str, p: &Plan) -> Result<String, String> {
    let n = p.name.as_str();
    if p.lang == Lang::Python {
        let block = format!(
            "  {n}:\n    ports: [\"127.0.0.1::{port}\"]\n    develop:\n      \
             watch: [{{ action: rebuild, path: ./services/{n} }}]\n\n",
            port = p.port
        );
        return before_line(text, "  migrate:", &block);
    }
    let block = format!(
        "  {n}:\n    build: {{ args: {{ PROFILE: dev }} }}\n    environment:\n      SLIPWAY_LOG: debug,sqlx=warn,hyper=info\n    \
         ports: [\"127.0.0.1::{port}\"]\n    develop:\n      \
         watch: [{{ action: rebuild, path: ./services/{n} }}, {{ action: rebuild, path: ./crates }}]\n\n",
        port = p.port
    );
    before_line(text, "  migrate:", &block)
}

fn compose_prod(text: &str, p: &Plan) -> Result<String, String> {
    let n = p.name.as_str();
    let block = format!(
        "  {n}:\n    <<: *prod\n    image: {images}/{n}:${{SLIPWAY_TAG:?set SLIPWAY_TAG to the image tag to deploy (the git SHA)}}\n    \
         environment:\n      <<: *env\n    deploy:\n      replicas: 2\n      resources: {{ limits: {{ cpus: \"0.5\", memory: 256M }} }}\n\n",
        images = p.images
    );
    before_line(text, "  migrate:", &block)
}

/// A Rust service on the bus reads `SLIPWAY_BUS_URL` and runs the relay, so the NATS overlay
/// names it beside auth and the mailer; a Python one stays on Postgres's SQL protocol.
fn compose_nats(text: &str, p: &Plan) -> Result<String, String> {
    if !p.bus || p.lang == Lang::Python {
        return Ok(text.to_string());
    }
    let line = format!("  {}: *on-nats\n", p.name.as_str());
    after_last(text, |l| l.ends_with(": *on-nats"), &line, "`NAME: *on-nats` line")
}

fn readme(text: &str, p: &Plan) -> Result<String, String> {
    let lang = if p.lang == Lang::Python { "Python " } else { "" };
    let line = format!(
        "{:<17}the {lang}{} service (made by `slipway new service`)\n",
        format!("services/{}", p.name),
        p.name
    );
    after_last(text, |l| l.starts_with("services/gateway "), &line, "services/gateway line in the layout")
}
