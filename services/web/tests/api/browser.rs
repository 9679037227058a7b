//! The whole journey in a real browser: headless Chromium (Debian's chromium and
//! chromium-driver) driven over WebDriver, against real auth, mailer and Postgres. Each page
//! is saved as a PNG under target/e2e/.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;
use testkit::eventually;

use crate::helpers::spawn_stack;

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";

struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn browser() -> (Client, Driver) {
    // Two TLS backends are linked into this test binary; pick one for WebDriver's client.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let port = testkit::free_port();
    let driver = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts (apt-get install chromium chromium-driver)");
    let driver = Driver(driver);
    let status = format!("http://127.0.0.1:{port}/status");
    eventually(Duration::from_secs(20), "chromedriver answers", async || reqwest::get(&status).await.is_ok())
        .await;
    let profile = std::env::temp_dir().join(format!("chromium-{}", uuid::Uuid::new_v4().simple()));
    let caps = json!({ "goog:chromeOptions": { "binary": CHROMIUM, "args": [
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
        "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--window-size=1200,900", format!("--user-data-dir={}", profile.display()),
    ]}});
    let caps = caps.as_object().expect("object").clone().into_iter().collect();
    let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .expect("a Chromium session");
    (client, driver)
}

struct Journey {
    c: Client,
    base: String,
    shot: usize,
}

impl Journey {
    async fn snap(&mut self, name: &str) {
        self.shot += 1;
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/e2e");
        std::fs::create_dir_all(&dir).expect("artifact folder");
        let png = self.c.screenshot().await.expect("screenshot");
        assert!(png.starts_with(b"\x89PNG"), "a PNG");
        std::fs::write(dir.join(format!("{:02}-{name}.png", self.shot)), png).expect("write screenshot");
    }

    async fn open(&mut self, path: &str) {
        self.c.goto(&format!("{}{path}", self.base)).await.expect("navigate");
    }

    async fn fill(&self, css: &str, text: &str) {
        self.c.find(Locator::Css(css)).await.expect(css).send_keys(text).await.expect("type");
    }

    async fn click(&self, css: &str) {
        self.c.find(Locator::Css(css)).await.expect(css).click().await.expect("click");
    }

    async fn arrive(&self, path: &str) {
        let want = format!("{}{path}", self.base);
        let c = &self.c;
        eventually(Duration::from_secs(15), &format!("the browser reaches {path}"), async || {
            c.current_url().await.is_ok_and(|u| u.as_str() == want)
        })
        .await;
    }

    /// The page's main text; empty while a page is still loading.
    async fn text(&self) -> String {
        match self.c.find(Locator::Css("main")).await {
            Ok(main) => main.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        }
    }
}

#[tokio::test]
async fn a_person_signs_up_activates_logs_in_changes_password_and_logs_in_again_in_a_real_browser() {
    let stack = spawn_stack("dev").await;
    let (c, _driver) = browser().await;
    let mut j = Journey { c, base: stack.web.clone(), shot: 0 };
    let email = "ada.lovelace.countess@analytical-engines.example.com";
    let (first, second) = ("first long passphrase", "second long passphrase");

    j.open("/").await;
    j.snap("home").await;
    j.click("a.button[href='/signup']").await;
    j.arrive("/signup").await;
    j.fill("#email", email).await;
    j.fill("#password", first).await;
    j.snap("signup").await;
    j.click("button[type=submit]").await;
    j.arrive("/check-email").await;
    j.snap("check-email").await;

    let mut link = String::new();
    eventually(Duration::from_secs(15), "the activation email in the dev mailbox", async || {
        j.open("/dev/mail").await;
        match j.c.find(Locator::Css("a.mail-link")).await {
            Ok(a) => {
                link = a.attr("href").await.ok().flatten().unwrap_or_default();
                !link.is_empty()
            }
            Err(_) => false,
        }
    })
    .await;
    j.snap("dev-mailbox").await;
    assert!(link.starts_with(&format!("{}/activate?token=", stack.web)), "{link}");

    j.c.goto(&link).await.expect("open the activation link");
    j.snap("activation-landing").await;
    j.click("button[type=submit]").await;
    j.arrive("/login?activated=1").await;
    eventually(Duration::from_secs(10), "the activated notice", async || {
        j.text().await.contains("Your account is active")
    })
    .await;
    j.snap("activated").await;
    let offered = j.c.find(Locator::Css("#email")).await.expect("email field").prop("value").await;
    assert_eq!(offered.expect("value").as_deref(), Some(email), "the activated address is filled in");

    j.fill("#password", first).await;
    j.click("button[type=submit]").await;
    j.arrive("/account").await;
    eventually(Duration::from_secs(10), "the account page", async || j.text().await.contains(email)).await;
    j.snap("account").await;

    j.fill("#current_password", first).await;
    j.fill("#new_password", second).await;
    j.click("form[action='/account/password'] button").await;
    eventually(Duration::from_secs(10), "the password-changed notice", async || {
        j.text().await.contains("Your password is changed")
    })
    .await;
    j.snap("password-changed").await;

    j.click("#logout").await;
    j.arrive("/login?logged_out=1").await;
    j.snap("logged-out").await;

    j.fill("#email", email).await;
    j.fill("#password", first).await;
    j.click("button[type=submit]").await;
    eventually(Duration::from_secs(10), "the wrong-password message", async || {
        j.text().await.contains("Wrong email or password.")
    })
    .await;
    j.snap("wrong-password").await;

    j.open("/login").await;
    j.fill("#email", email).await;
    j.fill("#password", second).await;
    j.click("button[type=submit]").await;
    j.arrive("/account").await;
    j.snap("logged-in-with-new-password").await;

    j.c.goto(&link).await.expect("open the activation link again");
    j.click("button[type=submit]").await;
    eventually(Duration::from_secs(10), "the used-link message", async || {
        j.text().await.contains("This link was already used.")
    })
    .await;
    j.snap("used-activation-link").await;

    j.c.set_window_size(390, 844).await.expect("phone width");
    j.open("/account").await;
    j.snap("account-phone-width").await;
    // Each piece of the address (cut before `.` and `@`) stays on one line: the address wraps
    // between pieces, never inside a word.
    let split = j
        .c
        .execute(
            "const dd = document.getElementById('account-email'); \
             const walk = document.createTreeWalker(dd, NodeFilter.SHOW_TEXT); const split = []; let n; \
             while ((n = walk.nextNode())) { const r = document.createRange(); r.selectNodeContents(n); \
               if (r.getClientRects().length > 1) split.push(n.textContent); } \
             return [split, dd.getClientRects()[0].height > 1.5 * parseFloat(getComputedStyle(dd).lineHeight)];",
            vec![],
        )
        .await
        .expect("measure the address");
    assert_eq!(split[0], json!([]), "no piece of the address is broken inside a word");
    assert_eq!(split[1], json!(true), "at phone width the address does wrap");
    j.c.close().await.expect("close the browser");
}
