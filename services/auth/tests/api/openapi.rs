//! The OpenAPI document: complete, and true to what the API answers.

use serde_json::Value;

use crate::helpers::spawn_app;

#[tokio::test]
async fn the_openapi_document_is_3_1_and_describes_every_route() {
    let app = spawn_app().await;
    let doc: Value = app.get("/openapi.json").await.json().await.expect("json");
    assert!(doc["openapi"].as_str().expect("version").starts_with("3.1"), "{}", doc["openapi"]);
    let paths = doc["paths"].as_object().expect("paths");
    for (path, method) in [
        ("/signup", "post"),
        ("/activation", "post"),
        ("/activation/resend", "post"),
        ("/login", "post"),
        ("/token/refresh", "post"),
        ("/logout", "post"),
        ("/logout/all", "post"),
        ("/password/reset", "post"),
        ("/password/reset/confirm", "post"),
        ("/password/change", "post"),
        ("/me", "get"),
        ("/.well-known/jwks.json", "get"),
    ] {
        assert!(paths.get(path).and_then(|p| p.get(method)).is_some(), "{method} {path} missing");
        let status = if method == "post" {
            app.client.post(app.url(path)).send().await
        } else {
            app.client.get(app.url(path)).send().await
        };
        assert_ne!(status.expect("answer").status(), 404, "{path} is documented but not served");
    }
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
}

/// Schemathesis (an independent tool, from PyPI) generates requests from the document, valid
/// and invalid, signed in and not, and checks every answer against it: status codes, content
/// types, schemas, no 5xx, schema-valid requests accepted and invalid ones refused.
#[tokio::test]
async fn schemathesis_finds_no_answer_the_document_does_not_describe() {
    let app = spawn_app().await;
    let user = app.active_user().await;
    let tokens = app.tokens(&user).await;
    let bearer = format!("Authorization: Bearer {}", tokens["access_token"].as_str().expect("at"));
    let schema = app.url("/openapi.json");
    let out = tokio::process::Command::new("python3")
        .args(["-m", "schemathesis.cli", "run", &schema, "--checks", "all"])
        .args(["--max-examples", "40", "--seed", "20261130"])
        .args(["--header", &bearer, "--no-color"])
        .current_dir(std::env::temp_dir())
        .output()
        .await
        .expect("python3 runs (and pip install schemathesis)");
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "schemathesis failed:\n{report}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(report.contains("passed"), "{report}");
}
