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
