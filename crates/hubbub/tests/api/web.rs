//! SPEC §11 and the performance target for the web client: every asset at a
//! content-hashed, immutable URL, the entry page revalidated and naming only those,
//! everything served compressed when the browser asks.

use std::collections::BTreeSet;

use crate::support::*;

const IMMUTABLE: &str = "public, max-age=31536000, immutable";

fn header(r: &Resp, name: &str) -> String {
    r.headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

/// The same-origin URLs an HTML page names in `src="…"` / `href="…"`.
fn page_refs(html: &str) -> Vec<String> {
    let mut out = Vec::new();
    for opener in [" src=\"", " href=\""] {
        for (i, _) in html.match_indices(opener) {
            let rest = &html[i + opener.len()..];
            let url = &rest[..rest.find('"').expect("closing quote")];
            if url.starts_with('/') && !url.starts_with("//") {
                out.push(url.to_string());
            }
        }
    }
    out
}

/// The module specifiers a JS file imports, resolved against its URL.
fn imports(url: &str, js: &str) -> Vec<String> {
    let dir = &url[..url.rfind('/').expect("a path") + 1];
    let mut out = Vec::new();
    for opener in ["from '", "from \"", "import('", "import(\""] {
        for (i, _) in js.match_indices(opener) {
            let rest = &js[i + opener.len()..];
            let spec = &rest[..rest.find(['\'', '"']).expect("closing quote")];
            let mut parts: Vec<&str> = if spec.starts_with('/') {
                Vec::new()
            } else if spec.starts_with('.') {
                dir.split('/').filter(|s| !s.is_empty()).collect()
            } else {
                continue; // a string that merely reads "from '…"
            };
            for seg in spec.split('/') {
                match seg {
                    "" | "." => {}
                    ".." => {
                        parts.pop();
                    }
                    s => parts.push(s),
                }
            }
            out.push(format!("/{}", parts.join("/")));
        }
    }
    out
}

/// A hashed URL's file name ends in `.<8 hex digits>.<ext>`.
fn is_hashed(url: &str) -> bool {
    let file = url.rsplit('/').next().unwrap_or_default();
    let parts: Vec<&str> = file.split('.').collect();
    url.starts_with("/assets/")
        && parts.len() >= 3
        && parts[parts.len() - 2].len() == 8
        && parts[parts.len() - 2]
            .chars()
            .all(|c| c.is_ascii_hexdigit())
}

#[tokio::test]
async fn the_page_names_only_hashed_immutable_assets_and_is_revalidated() {
    let server = fast().await;
    let http = server.http();
    let page = http.get("/").await;
    assert_eq!(page.status, 200);
    assert_eq!(header(&page, "cache-control"), "no-cache", "GET /");
    let etag = header(&page, "etag");
    assert!(!etag.is_empty(), "GET / without an ETag");
    let html = String::from_utf8(page.bytes.clone()).expect("utf-8 page");

    let refs = page_refs(&html);
    for expected in [".css", ".js", ".svg"] {
        assert!(
            refs.iter().any(|u| u.ends_with(expected)),
            "the page names no {expected}: {refs:?}"
        );
    }
    for url in &refs {
        assert!(is_hashed(url), "the page names an unhashed URL {url}");
    }

    // Every asset the page loads, and every module those import, is hashed and
    // immutable, with the right type and the page's CSP still allowing it.
    let mut todo: Vec<String> = refs.clone();
    let mut seen = BTreeSet::new();
    while let Some(url) = todo.pop() {
        if !seen.insert(url.clone()) {
            continue;
        }
        assert!(is_hashed(&url), "{url} (imported) is not hashed");
        let r = http.get(&url).await;
        assert_eq!(r.status, 200, "GET {url}");
        assert_eq!(header(&r, "cache-control"), IMMUTABLE, "GET {url}");
        let ct = header(&r, "content-type");
        let want = match url.rsplit('.').next() {
            Some("js") => "javascript",
            Some("css") => "text/css",
            Some("svg") => "image/svg+xml",
            other => panic!("unexpected asset type {other:?} at {url}"),
        };
        assert!(ct.contains(want), "GET {url}: content-type {ct:?}");
        if url.ends_with(".js") {
            let js = String::from_utf8(r.bytes.clone()).expect("utf-8 module");
            todo.extend(imports(&url, &js));
        }
    }
    assert!(
        seen.len() >= 10,
        "expected the whole module graph, got {seen:?}"
    );

    // The page revalidates cheaply.
    let again = http
        .send(
            http.request(reqwest::Method::GET, "/")
                .header("if-none-match", &etag),
        )
        .await;
    assert_eq!(again.status, 304, "GET / with its ETag");
    assert!(again.bytes.is_empty());

    // The share link is the same page.
    let link = http.get("/r/0192f0c4-0000-7000-8000-000000000000").await;
    assert_eq!(link.status, 200);
    assert_eq!(header(&link, "cache-control"), "no-cache", "GET /r/…");
    assert_eq!(link.bytes, page.bytes, "/r/{{id}} serves another page");

    let csp = header(&page, "content-security-policy");
    assert!(csp.contains("script-src 'self'"), "CSP {csp}");
    assert!(csp.contains("style-src 'self'"), "CSP {csp}");
}

#[tokio::test]
async fn unknown_hashes_are_not_found_and_unhashed_paths_still_serve() {
    let server = fast().await;
    let http = server.http();
    let html = String::from_utf8(http.get("/").await.bytes).expect("utf-8 page");
    let main = page_refs(&html)
        .into_iter()
        .find(|u| u.contains("/main."))
        .expect("the page loads main.js");
    let hash = main.rsplit('.').nth(1).expect("a hash");
    let stale = main.replace(
        hash,
        if hash == "00000000" {
            "11111111"
        } else {
            "00000000"
        },
    );
    let r = http.get(&stale).await;
    assert_eq!(r.status, 404, "GET {stale}");
    assert_eq!(http.get("/assets/js/main.js").await.status, 404);
    assert_eq!(http.get("/assets/nothing.0badc0de.js").await.status, 404);

    // The old names keep working (revalidated), for anything that knows them.
    for old in ["/app.css", "/js/main.js", "/favicon.svg"] {
        let r = http.get(old).await;
        assert_eq!(r.status, 200, "GET {old}");
        assert_eq!(header(&r, "cache-control"), "no-cache", "GET {old}");
    }
}

#[tokio::test]
async fn assets_are_compressed_when_the_browser_asks() {
    let server = fast().await;
    let http = server.http();
    let html = String::from_utf8(http.get("/").await.bytes).expect("utf-8 page");
    let refs = page_refs(&html);
    let css = refs
        .iter()
        .find(|u| u.ends_with(".css"))
        .expect("the page loads CSS");
    let plain = http.get(css).await;
    assert_eq!(
        header(&plain, "content-encoding"),
        "",
        "unasked-for encoding"
    );
    for (path, min) in [(css.as_str(), 10_000), ("/", 4_000)] {
        for encoding in ["gzip", "br"] {
            let r = http
                .send(
                    http.request(reqwest::Method::GET, path)
                        .header("accept-encoding", encoding),
                )
                .await;
            assert_eq!(r.status, 200, "GET {path} ({encoding})");
            assert_eq!(header(&r, "content-encoding"), encoding, "GET {path}");
            assert!(
                header(&r, "vary")
                    .to_ascii_lowercase()
                    .contains("accept-encoding"),
                "GET {path} ({encoding}) without Vary: Accept-Encoding"
            );
            let plain_len = if path == "/" {
                html.len()
            } else {
                plain.bytes.len()
            };
            assert!(plain_len > min, "{path} is only {plain_len} bytes");
            assert!(
                r.bytes.len() * 2 < plain_len,
                "{path} as {encoding}: {} bytes of {plain_len}",
                r.bytes.len()
            );
        }
    }
}
