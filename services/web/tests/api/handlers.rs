//! Web's pages and forms: CSRF, sessions and what each page shows.

use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use reqwest::redirect::Policy;
use reqwest::{Client, Response};

use crate::helpers::{Stack, spawn_stack, spawn_stack_with};

fn client() -> Client {
    Client::builder().redirect(Policy::none()).build().expect("client")
}

fn set_cookies(res: &Response) -> Vec<String> {
    res.headers().get_all(SET_COOKIE).iter().map(|v| v.to_str().expect("ascii").to_string()).collect()
}

/// A browser-like visitor that keeps cookies and reads the CSRF token from forms.
struct Visitor {
    client: Client,
    cookies: Vec<(String, String)>,
    stack_web: String,
}

impl Visitor {
    fn new(stack: &Stack) -> Self {
        Self { client: client(), cookies: Vec::new(), stack_web: stack.web.clone() }
    }

    fn keep(&mut self, res: &Response) {
        for c in set_cookies(res) {
            let pair = c.split(';').next().expect("pair");
            let (k, v) = pair.split_once('=').expect("k=v");
            self.cookies.retain(|(name, _)| name != k);
            if !v.is_empty() {
                self.cookies.push((k.to_string(), v.to_string()));
            }
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ")
    }

    async fn get(&mut self, path: &str) -> (Page, String) {
        let res = self
            .client
            .get(format!("{}{path}", self.stack_web))
            .header(COOKIE, self.cookie_header())
            .send()
            .await
            .expect("get");
        self.keep(&res);
        let page = Page { status: res.status().as_u16(), headers: res.headers().clone() };
        (page, res.text().await.expect("body"))
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Response {
        let res = self
            .client
            .post(format!("{}{path}", self.stack_web))
            .header(COOKIE, self.cookie_header())
            .form(form)
            .send()
            .await
            .expect("post");
        self.keep(&res);
        res
    }

    async fn csrf(&mut self, page: &str) -> String {
        let (_, body) = self.get(page).await;
        let at = body.find("name=\"csrf\" value=\"").expect("a form with a CSRF token") + 19;
        body[at..].split('"').next().expect("token").to_string()
    }
}

/// A page's status and headers (its body is returned beside it).
struct Page {
    status: u16,
    headers: reqwest::header::HeaderMap,
}

impl Page {
    fn status(&self) -> u16 {
        self.status
    }

    fn headers(&self) -> &reqwest::header::HeaderMap {
        &self.headers
    }
}

#[tokio::test]
async fn a_form_post_without_a_valid_csrf_token_is_refused() {
    let stack = spawn_stack("dev").await;
    let mut v = Visitor::new(&stack);
    let forged = v
        .post(
            "/signup",
            &[("csrf", "forged"), ("email", "ada@example.com"), ("password", "a long passphrase")],
        )
        .await;
    assert_eq!(forged.status(), 403);
    let page = forged.text().await.expect("page");
    assert!(page.contains("This form has expired"), "{page}");

    let token = v.csrf("/signup").await;
    let mut stranger = Visitor::new(&stack);
    let replayed = stranger
        .post("/signup", &[("csrf", &token), ("email", "ada@example.com"), ("password", "a long passphrase")])
        .await;
    assert_eq!(replayed.status(), 403, "a token is bound to its browser's cookie");

    let ok = v
        .post("/signup", &[("csrf", &token), ("email", "ada@example.com"), ("password", "a long passphrase")])
        .await;
    assert_eq!(ok.status(), 303);
    assert_eq!(ok.headers()[LOCATION], "/check-email");
}

async fn signed_up_and_activated(stack: &Stack, v: &mut Visitor, email: &str, password: &str) {
    let token = v.csrf("/signup").await;
    assert_eq!(
        v.post("/signup", &[("csrf", &token), ("email", email), ("password", password)]).await.status(),
        303
    );
    let pool = stack.db.pool().await;
    // The mailer consumes the event (and the bus forgets it), so read the email it kept.
    let mut text = None;
    testkit::eventually(std::time::Duration::from_secs(10), "the activation email", async || {
        text = sqlx::query_scalar::<_, String>(
            "SELECT text_body FROM mailer.mailbox WHERE recipient = $1 ORDER BY id DESC LIMIT 1",
        )
        .bind(email)
        .fetch_optional(&pool)
        .await
        .expect("query");
        text.is_some()
    })
    .await;
    let text = text.expect("email");
    let link = text.split_whitespace().find(|w| w.contains("/activate?token=")).expect("activation link");
    let activation = link.split("token=").nth(1).expect("token").to_string();
    let csrf = v.csrf("/signup").await;
    assert_eq!(v.post("/activate", &[("csrf", &csrf), ("token", &activation)]).await.status(), 303);
}

async fn log_in(v: &mut Visitor, email: &str, password: &str) -> Response {
    let csrf = v.csrf("/login").await;
    v.post("/login", &[("csrf", &csrf), ("email", email), ("password", password)]).await
}

#[tokio::test]
async fn every_form_refuses_a_post_whose_csrf_token_is_not_this_browsers() {
    let stack = spawn_stack("dev").await;
    let mut v = Visitor::new(&stack);
    let fields = [
        ("email", "ada@example.com"),
        ("password", "a long passphrase"),
        ("token", "abc"),
        ("current_password", "a long passphrase"),
        ("new_password", "another long passphrase"),
    ];
    let forms = [
        "/login",
        "/account/password",
        "/logout",
        "/logout/all",
        "/forgot-password",
        "/reset-password",
        "/signup",
        "/activate",
        "/activation/resend",
    ];
    for path in forms {
        let mut form = vec![("csrf", "forged")];
        form.extend(fields);
        let res = v.post(path, &form).await;
        assert_eq!(res.status(), 403, "{path}");
        let page = res.text().await.expect("page");
        assert!(page.contains("This form has expired"), "{path}: {page}");
    }
}

#[tokio::test]
async fn session_cookies_are_http_only_lax_and_outside_dev_secure_and_host_prefixed() {
    for (env, name, secure) in [("dev", "slipway_session=", false), ("test", "__Host-slipway_session=", true)]
    {
        let stack = spawn_stack(env).await;
        let mut v = Visitor::new(&stack);
        signed_up_and_activated(&stack, &mut v, "ada@example.com", "a long passphrase").await;
        let res = log_in(&mut v, "ada@example.com", "a long passphrase").await;
        assert_eq!(res.status(), 303, "{env}");
        let cookie = set_cookies(&res)
            .into_iter()
            .find(|c| c.starts_with(name))
            .unwrap_or_else(|| panic!("{env}: no {name}"));
        assert!(
            cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax") && cookie.contains("Path=/"),
            "{cookie}"
        );
        assert_eq!(cookie.contains("Secure"), secure, "{env}: {cookie}");
        assert!(!cookie.contains("Domain="), "{cookie}");
    }
}

#[tokio::test]
async fn an_expired_session_lands_on_the_login_page_with_a_message() {
    let stack = spawn_stack("dev").await;
    let mut v = Visitor::new(&stack);
    signed_up_and_activated(&stack, &mut v, "ada@example.com", "a long passphrase").await;
    assert_eq!(log_in(&mut v, "ada@example.com", "a long passphrase").await.status(), 303);
    let (account, body) = v.get("/account").await;
    assert_eq!(account.status(), 200);
    assert!(body.replace("<wbr>", "").contains("ada@example.com"));

    // The session ends at auth (say, logged out everywhere from another device), and the
    // stored access token runs out: the next page must ask auth, and auth says no.
    let pool = stack.db.pool().await;
    sqlx::query("UPDATE auth.sessions SET revoked_at = now()").execute(&pool).await.expect("revoke");
    sqlx::query("UPDATE web.sessions SET access_expires_at = now()").execute(&pool).await.expect("expire");
    let (res, _) = v.get("/account").await;
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()[LOCATION], "/login?expired=1");
    let (_, login) = v.get("/login?expired=1").await;
    assert!(login.contains("Your session has expired. Please log in again."), "{login}");
    let left: i64 =
        sqlx::query_scalar("SELECT count(*) FROM web.sessions").fetch_one(&pool).await.expect("count");
    assert_eq!(left, 0, "the dead session is forgotten");
}

#[tokio::test]
async fn pages_carry_strict_security_headers_and_unknown_pages_get_the_sites_404() {
    let stack = spawn_stack("test").await;
    let mut v = Visitor::new(&stack);
    let (home, body) = v.get("/").await;
    let csp = home.headers()["content-security-policy"].to_str().expect("csp").to_string();
    assert!(
        csp.contains("frame-ancestors 'none'")
            && !csp.contains("unsafe-inline")
            && !csp.contains("script-src"),
        "{csp}"
    );
    assert_eq!(home.headers()["referrer-policy"], "no-referrer");
    assert!(!body.contains("<script"), "no JavaScript at all");
    let (missing, page) = v.get("/no/such/page").await;
    assert_eq!(missing.status(), 404);
    assert!(page.contains("Page not found") && page.contains("/static/style.css"), "{page}");
    assert!(missing.headers().contains_key("content-security-policy"));
    let (dev_mail, _) = v.get("/dev/mail").await;
    assert_eq!(dev_mail.status(), 200, "test is not production: the dev mailbox is there");
}

#[tokio::test]
async fn the_dev_mailbox_is_shown_only_to_visitors_on_this_machine_unless_opened() {
    let behind_gateway = [("SLIPWAY_WEB_TRUSTED_PROXIES", "127.0.0.1")];
    let stack = spawn_stack_with("dev", &behind_gateway).await;
    let from = async |client: &str| {
        let url = format!("{}/dev/mail", stack.web);
        let res = Client::new().get(url).header("x-forwarded-for", client).send().await.expect("answer");
        res.status().as_u16()
    };
    assert_eq!(from("127.0.0.1").await, 200, "a visitor on this machine");
    assert_eq!(from("203.0.113.9").await, 404, "a visitor from elsewhere");

    let open = spawn_stack_with("dev", &[behind_gateway[0], ("SLIPWAY_WEB_DEV_MAILBOX", "open")]).await;
    let url = format!("{}/dev/mail", open.web);
    let res = Client::new().get(url).header("x-forwarded-for", "203.0.113.9").send().await;
    assert_eq!(res.expect("answer").status(), 200, "opened explicitly");

    let prod = [("SLIPWAY_ENV", "prod"), ("SLIPWAY_WEB_DEV_MAILBOX", "open")];
    let refused = web::Config::load(&kit::config::Sources::from_vars(prod));
    let problems = refused.expect_err("refused in prod").to_string();
    assert!(problems.contains("SLIPWAY_WEB_DEV_MAILBOX"), "{problems}");
}

#[tokio::test]
async fn logging_out_while_auth_is_down_still_ends_the_session_here() {
    let mut stack = spawn_stack("dev").await;
    let mut v = Visitor::new(&stack);
    signed_up_and_activated(&stack, &mut v, "ada@example.com", "a long passphrase").await;
    assert_eq!(log_in(&mut v, "ada@example.com", "a long passphrase").await.status(), 303);
    let pool = stack.db.pool().await;
    // The access token needs refreshing, and auth cannot be reached.
    sqlx::query("UPDATE web.sessions SET access_expires_at = now()").execute(&pool).await.expect("expire");
    stack.stop_auth().await;
    let csrf = v.csrf("/login").await;
    let res = v.post("/logout", &[("csrf", &csrf)]).await;
    assert_eq!(res.status(), 303);
    let left: i64 =
        sqlx::query_scalar("SELECT count(*) FROM web.sessions").fetch_one(&pool).await.expect("count");
    assert_eq!(left, 0, "the session row is gone, whatever auth could be told");
}

#[tokio::test]
async fn the_retention_sweep_removes_expired_sessions_and_keeps_live_ones() {
    let stack = spawn_stack("dev").await;
    for (email, n) in [("old@example.com", 1), ("new@example.com", 2)] {
        let mut v = Visitor::new(&stack);
        signed_up_and_activated(&stack, &mut v, email, "a long passphrase").await;
        assert_eq!(log_in(&mut v, email, "a long passphrase").await.status(), 303, "session {n}");
    }
    let pool = stack.db.pool().await;
    sqlx::query("UPDATE web.sessions SET expires_at = now() - interval '1 second' WHERE ctid = (SELECT min(ctid) FROM web.sessions)")
        .execute(&pool)
        .await
        .expect("expire one");
    let mut conn = pool.acquire().await.expect("connection");
    sqlx::query("SET search_path TO web").execute(&mut *conn).await.expect("schema");
    for (_, sql) in web::RETENTION {
        sqlx::query(sqlx::AssertSqlSafe(*sql)).execute(&mut *conn).await.expect("sweep");
    }
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM web.sessions WHERE expires_at > now()")
        .fetch_one(&pool)
        .await
        .expect("count");
    let all: i64 =
        sqlx::query_scalar("SELECT count(*) FROM web.sessions").fetch_one(&pool).await.expect("count");
    assert_eq!((left, all), (1, 1), "the expired session went, the live one stayed");
}

#[tokio::test]
async fn auths_tokens_are_stored_sealed_so_a_copy_of_the_table_opens_no_session() {
    let stack = spawn_stack("dev").await;
    let mut v = Visitor::new(&stack);
    signed_up_and_activated(&stack, &mut v, "ada@example.com", "a long passphrase").await;
    assert_eq!(log_in(&mut v, "ada@example.com", "a long passphrase").await.status(), 303);
    let pool = stack.db.pool().await;
    let (access, refresh): (String, String) =
        sqlx::query_as("SELECT access_token, refresh_token FROM web.sessions")
            .fetch_one(&pool)
            .await
            .expect("row");
    let live: Vec<Vec<u8>> =
        sqlx::query_scalar("SELECT hash FROM auth.refresh_tokens").fetch_all(&pool).await.expect("auth's");
    assert!(access.starts_with("v1.") && refresh.starts_with("v1."), "sealed: {access} {refresh}");
    // A JWT in the clear would carry its header, base64url of `{"alg":` (a sealed value, being
    // random, holds these ten characters about once in 10^18).
    assert!(
        !access.contains("eyJhbGciOi") && !refresh.contains("eyJhbGciOi"),
        "no JWT in the clear: {access}"
    );
    assert_eq!(live.len(), 1);
    let (account, _) = v.get("/account").await;
    assert_eq!(account.status(), 200, "the browser's cookie still opens its session");
}
