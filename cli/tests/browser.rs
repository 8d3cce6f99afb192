//! The web view in a real browser: Chromium driven through chromedriver (W3C WebDriver over
//! HTTP) against `strata serve` on a loopback port. Screenshots go to
//! `target/browser-screenshots/`.
//!
//! Skipped (with a note) when chromedriver is not installed, unless
//! `STRATA_REQUIRE_BROWSER=1` (as `.ci/run` sets after installing it), which makes a missing
//! browser a failure.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn find_program(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    names.iter().find_map(|name| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    })
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A WebDriver session.
struct Browser {
    base: String,
    session: String,
    _driver: Killed,
}

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

impl Browser {
    fn start(driver: &Path) -> Self {
        let port = free_port();
        let child = Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let driver_guard = Killed(child);
        let base = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        while ureq::get(&format!("{base}/status")).call().is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "chromedriver did not start"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let mut options = json!({"args": ["--headless=new", "--no-sandbox", "--disable-gpu",
            "--disable-dev-shm-usage", "--window-size=1280,900"]});
        if let Some(chromium) = find_program(&["chromium", "chromium-browser", "google-chrome"]) {
            options["binary"] = json!(chromium.to_string_lossy());
        }
        let caps = json!({"capabilities": {"alwaysMatch": {"browserName": "chrome",
            "goog:chromeOptions": options}}});
        let r: Value = ureq::post(&format!("{base}/session"))
            .send_json(caps)
            .unwrap()
            .into_json()
            .unwrap();
        let session = r["value"]["sessionId"].as_str().unwrap().to_owned();
        Self {
            base: format!("{base}/session/{session}"),
            session,
            _driver: driver_guard,
        }
    }

    fn post(&self, path: &str, body: Value) -> Value {
        let r: Value = ureq::post(&format!("{}{path}", self.base))
            .send_json(body)
            .unwrap_or_else(|e| panic!("webdriver {path}: {e}"))
            .into_json()
            .unwrap();
        r["value"].clone()
    }

    fn get(&self, path: &str) -> Value {
        let r: Value = ureq::get(&format!("{}{path}", self.base))
            .call()
            .unwrap_or_else(|e| panic!("webdriver {path}: {e}"))
            .into_json()
            .unwrap();
        r["value"].clone()
    }

    fn open(&self, url: &str) {
        self.post("/url", json!({"url": url}));
    }

    fn all(&self, css: &str) -> Vec<String> {
        self.post("/elements", json!({"using": "css selector", "value": css}))
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e[ELEMENT].as_str().unwrap().to_owned())
            .collect()
    }

    fn one(&self, css: &str) -> String {
        let found = self.all(css);
        assert!(!found.is_empty(), "no element '{css}' on {}", self.url());
        found[0].clone()
    }

    fn text(&self, css: &str) -> String {
        let id = self.one(css);
        self.get(&format!("/element/{id}/text"))
            .as_str()
            .unwrap()
            .to_owned()
    }

    fn texts(&self, css: &str) -> Vec<String> {
        self.all(css)
            .iter()
            .map(|id| {
                self.get(&format!("/element/{id}/text"))
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect()
    }

    fn click(&self, css: &str) {
        let id = self.one(css);
        self.post(&format!("/element/{id}/click"), json!({}));
    }

    fn type_into(&self, css: &str, text: &str) {
        let id = self.one(css);
        self.post(&format!("/element/{id}/value"), json!({"text": text}));
    }

    fn url(&self) -> String {
        self.get("/url").as_str().unwrap_or_default().to_owned()
    }

    fn screenshot(&self, name: &str) {
        let b64 = self.get("/screenshot");
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/browser-screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join(format!("{name}.png")),
            base64(b64.as_str().unwrap()),
        )
        .unwrap();
    }

    /// Waits until `check` holds, up to 10 seconds.
    fn wait_for(&self, what: &str, check: impl Fn(&Self) -> bool) {
        let started = Instant::now();
        while !check(self) {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "timed out waiting for {what}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = ureq::delete(&self.base).call();
        let _ = &self.session;
    }
}

/// Decodes standard base64 (the screenshots WebDriver returns).
fn base64(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        _ => 63,
    };
    let clean: Vec<u8> = text
        .bytes()
        .filter(|c| *c != b'=' && !c.is_ascii_whitespace())
        .collect();
    let mut out = Vec::with_capacity(clean.len() * 3 / 4);
    for chunk in clean.chunks(4) {
        let mut n = 0u32;
        for (i, c) in chunk.iter().enumerate() {
            n |= u32::from(value(*c)) << (18 - 6 * i);
        }
        let bytes = n.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    out
}

#[test]
fn the_web_view_shows_documents_history_diffs_and_the_live_feed() {
    let Some(driver) = find_program(&["chromedriver"]) else {
        assert!(
            std::env::var_os("STRATA_REQUIRE_BROWSER").is_none(),
            "STRATA_REQUIRE_BROWSER is set but chromedriver is not installed"
        );
        eprintln!(
            "skipped: chromedriver is not installed (apt-get install chromium chromium-driver)"
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let put = |doc: &str, content: &str, message: &str| {
        let file = d.join("input");
        std::fs::write(&file, content).unwrap();
        let out = common::strata(d, &["put", doc, file.to_str().unwrap(), "-m", message]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    put(
        "notes/plan.md",
        "# Plan\n\nship the store\nwrite docs\n",
        "first draft",
    );
    put(
        "notes/plan.md",
        "# Plan\n\nship the fast store\nwrite docs\n",
        "faster",
    );
    put(
        "notes/plan.md",
        "# Plan\n\nship the fast store\nwrite the docs\ntest it\n",
        "more",
    );
    put("config.json", r#"{"port": 80, "hosts": ["a"]}"#, "initial");
    put(
        "config.json",
        r#"{"port": 8080, "hosts": ["a", "b"]}"#,
        "move port",
    );
    put("notes/old.txt", "gone soon\n", "old");
    let server = common::Server::start(d, &[]);
    let site = server.base.clone();
    let b = Browser::start(&driver);

    // The documents, then a search by prefix.
    b.open(&format!("{site}/"));
    assert_eq!(
        b.texts("#documents a.doc"),
        ["config.json", "notes/old.txt", "notes/plan.md"]
    );
    b.screenshot("documents");
    b.type_into("#prefix", "notes/");
    b.click("#search");
    b.wait_for("the search results", |b| b.url().contains("prefix=notes"));
    assert_eq!(
        b.texts("#documents a.doc"),
        ["notes/old.txt", "notes/plan.md"]
    );

    // A document's timeline, newest first, with messages and storage.
    b.click("#documents a.doc[href*='plan']");
    b.wait_for("the timeline", |b| b.url().contains("/ui/doc"));
    assert_eq!(b.text("#title"), "notes/plan.md");
    let rows = b.texts("#timeline tr.version");
    assert_eq!(rows.len(), 3);
    assert!(
        rows[0].contains("more") && rows[2].contains("first draft"),
        "{rows:?}"
    );
    b.screenshot("timeline");

    // Two versions picked in the page, compared: changed words are marked.
    b.click("input[name=a][value='1']");
    b.click("input[name=b][value='3']");
    b.click("#compare");
    b.wait_for("the diff", |b| b.url().contains("/ui/diff"));
    assert_eq!(
        b.texts("#diff del"),
        Vec::<String>::new(),
        "nothing removed word-wise"
    );
    let inserted = b.texts("#diff ins");
    assert!(inserted.iter().any(|t| t.contains("fast")), "{inserted:?}");
    assert!(b.text("#diff").contains("test it"));
    b.screenshot("diff-unified");
    // The same diff side by side, by its shareable link.
    b.click("#switch");
    b.wait_for("the side-by-side view", |b| b.url().contains("view=split"));
    assert!(!b.all("#diff td.add").is_empty());
    b.screenshot("diff-side-by-side");

    // A JSON document's changes by path.
    b.open(&format!("{site}/ui/diff?key=config.json&a=1&b=2"));
    let changes = b.texts("#json-changes li");
    assert!(
        changes
            .iter()
            .any(|c| c.contains("/port") && c.contains("8080")),
        "{changes:?}"
    );
    assert!(
        changes.iter().any(|c| c.contains("/hosts/1")),
        "{changes:?}"
    );
    b.screenshot("diff-json");

    // One version's content, and its neighbours.
    b.open(&format!("{site}/ui/version?key=notes/plan.md&v=2"));
    assert!(b.text("#content").contains("ship the fast store"));
    b.click("#prev");
    b.wait_for("version 1", |b| b.url().ends_with("v=1"));
    assert!(b.text("#content").contains("ship the store"));

    // The live feed shows a version written while the page is open.
    b.open(&format!("{site}/ui/feed"));
    let before = b.all("#rows tr").len();
    assert_eq!(before, 6);
    ureq::put(&format!("{site}/v1/docs/notes/new.md"))
        .send_bytes(b"written while watching\n")
        .unwrap();
    b.wait_for("the new version in the feed", |b| {
        b.all("#rows tr").len() == before + 1
    });
    assert!(b.texts("#rows tr")[0].contains("notes/new.md"));
    b.screenshot("feed");

    // A missing document is a page that says so.
    b.open(&format!("{site}/ui/doc?key=nope"));
    assert_eq!(b.text("#error"), "no document 'nope'");
}
