//! The web client, embedded in the binary (debug builds read `web/` from disk, so a
//! browser reload shows client edits without rebuilding).
//!
//! Caching: every asset is served at a content-hashed URL under `/assets/`
//! (`/assets/js/main.3f9a1c2b.js`) with `Cache-Control: immutable` for a year, so a
//! returning browser loads the client without a single request for it. Only the entry
//! page (`/`, `/index.html` and the `/r/{id}` share link) is `no-cache` (revalidated by
//! `ETag`); it names the hashed URLs. There is no build step: the hashes are computed
//! once, from the embedded bytes, when the server starts, and the references between
//! files (`src`/`href` in HTML, `url()` in CSS, `import … from` in JS) are rewritten
//! then. A module's hash covers its own bytes and those of everything it imports,
//! directly or not, so a changed import target changes the importer's URL too (cycles
//! included). The unhashed paths (`/app.css`, `/js/main.js`) are still served, with
//! revalidation, for anything that knows them by name; nothing in the page uses them.

use std::collections::{BTreeSet, HashMap};
use std::ops::Range;
use std::sync::{Arc, LazyLock, RwLock};

use axum::Router;
use axum::body::Bytes;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use rust_embed::RustEmbed;
use sha2::{Digest, Sha256};

#[derive(RustEmbed)]
#[folder = "../../web/"]
struct Assets;

/// Where the hashed assets live.
pub const PREFIX: &str = "/assets/";
/// The entry page.
const INDEX: &str = "index.html";
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// Hex digits of the content hash in a URL (32 bits: names differ per file anyway).
const HASH_HEX: usize = 8;

pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    // Hash at startup, not on the first visitor's request.
    let _ = table();
    Router::new()
        .route("/", get(index))
        .route("/index.html", get(index))
        .route("/r/{id}", get(index))
        .route("/assets/{*path}", get(hashed))
        .route("/{*path}", get(unhashed))
}

/// One file as served: its (rewritten) bytes and validators.
struct Served {
    body: Bytes,
    mime: HeaderValue,
    etag: String,
}

impl Served {
    fn new(path: &str, body: Vec<u8>) -> Served {
        let etag = format!("\"{}\"", hex::encode(&Sha256::digest(&body)[..12]));
        let mime = mime_guess::from_path(path).first_or_octet_stream();
        Served {
            body: Bytes::from(body),
            mime: HeaderValue::from_str(mime.as_ref())
                .unwrap_or(HeaderValue::from_static("application/octet-stream")),
            etag,
        }
    }

    fn respond(&self, headers: &HeaderMap, cache: &'static str) -> Response {
        let fresh = headers
            .get(header::IF_NONE_MATCH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.split(',').any(|t| t.trim() == self.etag));
        let mut resp = if fresh {
            StatusCode::NOT_MODIFIED.into_response()
        } else {
            self.body.clone().into_response()
        };
        let h = resp.headers_mut();
        h.insert(header::CONTENT_TYPE, self.mime.clone());
        if let Ok(v) = HeaderValue::from_str(&self.etag) {
            h.insert(header::ETAG, v);
        }
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
        resp
    }
}

/// The web client as served: the rewritten entry page and every asset under its
/// hashed name.
pub struct Table {
    index: Option<Served>,
    /// `js/main.3f9a1c2b.js` → the rewritten module.
    hashed: HashMap<String, Served>,
    /// `js/main.js` → `/assets/js/main.3f9a1c2b.js`.
    urls: HashMap<String, String>,
}

impl Table {
    /// Hashes and rewrites the files (path → bytes) of the client.
    pub fn build(files: &HashMap<String, Vec<u8>>) -> Table {
        let files: HashMap<String, Vec<u8>> = files
            .iter()
            .map(|(p, b)| (p.clone(), strip_header(p, b)))
            .collect();
        let files = &files;
        // Who references whom (by path), with where in the text.
        let refs: HashMap<&str, Vec<Ref>> = files
            .iter()
            .map(|(p, bytes)| (p.as_str(), references(p, bytes, files)))
            .collect();
        let digests: HashMap<&str, [u8; 32]> = files
            .iter()
            .map(|(p, b)| (p.as_str(), Sha256::digest(b).into()))
            .collect();
        let mut names: HashMap<&str, String> = HashMap::new();
        for path in files.keys().filter(|p| p.as_str() != INDEX) {
            // Everything reachable from this file, itself included, in a stable order.
            let mut seen = BTreeSet::from([path.as_str()]);
            let mut todo = vec![path.as_str()];
            while let Some(p) = todo.pop() {
                for r in refs.get(p).into_iter().flatten() {
                    if seen.insert(r.target.as_str()) {
                        todo.push(r.target.as_str());
                    }
                }
            }
            let mut h = Sha256::new();
            for p in &seen {
                h.update(p.as_bytes());
                h.update([0]);
                h.update(digests.get(p).copied().unwrap_or_default());
            }
            let hash = hex::encode(h.finalize());
            names.insert(path.as_str(), hashed_name(path, &hash[..HASH_HEX]));
        }
        let rewrite = |path: &str| -> Vec<u8> {
            let bytes = files.get(path).cloned().unwrap_or_default();
            let rs = refs.get(path).map(Vec::as_slice).unwrap_or_default();
            if rs.is_empty() {
                return bytes;
            }
            let mut out = Vec::with_capacity(bytes.len() + rs.len() * 16);
            let mut at = 0;
            for r in rs {
                let Some(name) = names.get(r.target.as_str()) else {
                    continue;
                };
                out.extend_from_slice(&bytes[at..r.span.start]);
                let spec = &bytes[r.span.clone()];
                if spec.starts_with(b"/") {
                    out.extend_from_slice(PREFIX.as_bytes());
                    out.extend_from_slice(name.as_bytes());
                } else {
                    // Relative (`./api.js`): the importer is under /assets/ too, so
                    // only the file name changes.
                    let dir_len = spec.iter().rposition(|&c| c == b'/').map_or(0, |i| i + 1);
                    out.extend_from_slice(&spec[..dir_len]);
                    let file = name.rsplit('/').next().unwrap_or(name);
                    out.extend_from_slice(file.as_bytes());
                }
                at = r.span.end;
            }
            out.extend_from_slice(&bytes[at..]);
            out
        };
        let hashed = names
            .iter()
            .map(|(path, name)| (name.clone(), Served::new(path, rewrite(path))))
            .collect();
        let urls = names
            .iter()
            .map(|(path, name)| (path.to_string(), format!("{PREFIX}{name}")))
            .collect();
        let index = files
            .contains_key(INDEX)
            .then(|| Served::new(INDEX, rewrite(INDEX)));
        Table {
            index,
            hashed,
            urls,
        }
    }

    /// The embedded client.
    fn embedded() -> Table {
        let files = Assets::iter()
            .filter_map(|p| Some((p.to_string(), Assets::get(&p)?.data.into_owned())))
            .collect();
        Table::build(&files)
    }

    /// The hashed URL of a file of the client (`app.css` → `/assets/app.0123abcd.css`).
    pub fn url(&self, path: &str) -> Option<&str> {
        self.urls.get(path).map(String::as_str)
    }

    /// The body served for the entry page.
    pub fn index_body(&self) -> Option<&[u8]> {
        self.index.as_ref().map(|s| &s.body[..])
    }

    /// The body served at a hashed URL.
    pub fn hashed_body(&self, url: &str) -> Option<&[u8]> {
        let name = url.strip_prefix(PREFIX)?;
        self.hashed.get(name).map(|s| &s.body[..])
    }
}

static TABLE: LazyLock<RwLock<Arc<Table>>> =
    LazyLock::new(|| RwLock::new(Arc::new(Table::embedded())));

fn table() -> Arc<Table> {
    match TABLE.read() {
        Ok(t) => t.clone(),
        Err(poisoned) => poisoned.into_inner().clone(),
    }
}

async fn index(headers: HeaderMap) -> Response {
    // Debug builds serve web/ from disk: rehash on each page load so edits show up.
    let t = if cfg!(debug_assertions) {
        let fresh = Arc::new(Table::embedded());
        match TABLE.write() {
            Ok(mut t) => *t = fresh.clone(),
            Err(poisoned) => *poisoned.into_inner() = fresh.clone(),
        }
        fresh
    } else {
        table()
    };
    match &t.index {
        Some(s) => s.respond(&headers, "no-cache"),
        None => not_found(),
    }
}

async fn hashed(Path(path): Path<String>, headers: HeaderMap) -> Response {
    match table().hashed.get(&path) {
        Some(s) => s.respond(&headers, IMMUTABLE),
        None => not_found(),
    }
}

async fn unhashed(Path(path): Path<String>, headers: HeaderMap) -> Response {
    match Assets::get(&path) {
        Some(file) => Served::new(&path, file.data.into_owned()).respond(&headers, "no-cache"),
        None => not_found(),
    }
}

fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "not found").into_response()
}

/// JS modules are served without their leading `//` lines (the file's description,
/// for readers of web/: it would cost more bytes than the hashed names add). The lines
/// stay, empty, so line numbers in the browser match the source.
fn strip_header(path: &str, bytes: &[u8]) -> Vec<u8> {
    if !path.ends_with(".js") {
        return bytes.to_vec();
    }
    let mut out = Vec::with_capacity(bytes.len());
    let mut rest = bytes;
    while rest.starts_with(b"//") {
        match rest.iter().position(|&c| c == b'\n') {
            Some(nl) => {
                out.push(b'\n');
                rest = &rest[nl + 1..];
            }
            None => rest = &[],
        }
    }
    out.extend_from_slice(rest);
    out
}

/// `js/views/messages.js` + `3f9a1c2b` → `js/views/messages.3f9a1c2b.js`.
fn hashed_name(path: &str, hash: &str) -> String {
    let file_start = path.rfind('/').map_or(0, |i| i + 1);
    match path[file_start..].rfind('.') {
        Some(dot) if dot > 0 => {
            let dot = file_start + dot;
            format!("{}.{hash}{}", &path[..dot], &path[dot..])
        }
        _ => format!("{path}.{hash}"),
    }
}

/// A reference from one file to another: where the specifier is, and the file it
/// names.
struct Ref {
    span: Range<usize>,
    target: String,
}

/// The references in `path` to other files of the client, in text order.
fn references(path: &str, bytes: &[u8], files: &HashMap<String, Vec<u8>>) -> Vec<Ref> {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return Vec::new();
    };
    let openers: &[&str] = match path.rsplit('.').next() {
        Some("html") => &[" src=\"", " href=\""],
        Some("css") => &["url(\"", "url('", "url("],
        Some("js") => &[
            "from '",
            "from \"",
            "import '",
            "import \"",
            "import('",
            "import(\"",
        ],
        _ => return Vec::new(),
    };
    let dir = path.rfind('/').map_or("", |i| &path[..i]);
    let mut out: Vec<Ref> = Vec::new();
    for opener in openers {
        let close: &[char] = match opener.chars().last() {
            Some('"') => &['"'],
            Some('\'') => &['\''],
            _ => &[')', '"', '\'', ' '],
        };
        for (i, _) in text.match_indices(opener) {
            let start = i + opener.len();
            let Some(len) = text[start..].find(close) else {
                continue;
            };
            let span = start..start + len;
            // `url(` also matches where `url("` did; the first match wins.
            if out
                .iter()
                .any(|r| r.span.start <= span.start && span.start <= r.span.end)
            {
                continue;
            }
            if let Some(target) = resolve(dir, &text[span.clone()])
                && target != path
                && files.contains_key(&target)
            {
                out.push(Ref { span, target });
            }
        }
    }
    out.sort_by_key(|r| r.span.start);
    out
}

/// The file a specifier names, from a file in `dir`: `/app.css`, `./api.js`,
/// `../util.js`. Anything else (other origins, `data:`, bare names, queries) is left
/// alone.
fn resolve(dir: &str, spec: &str) -> Option<String> {
    if spec.contains(['?', '#', ':']) || spec.starts_with("//") {
        return None;
    }
    let (mut parts, rest): (Vec<&str>, &str) = if let Some(abs) = spec.strip_prefix('/') {
        (Vec::new(), abs)
    } else if spec.starts_with("./") || spec.starts_with("../") {
        (dir.split('/').filter(|s| !s.is_empty()).collect(), spec)
    } else {
        return None;
    };
    for seg in rest.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            s => parts.push(s),
        }
    }
    Some(parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(list: &[(&str, &str)]) -> HashMap<String, Vec<u8>> {
        list.iter()
            .map(|(p, b)| (p.to_string(), b.as_bytes().to_vec()))
            .collect()
    }

    fn text(b: Option<&[u8]>) -> String {
        String::from_utf8(b.expect("served").to_vec()).expect("utf-8")
    }

    /// The performance target: the client is at most 150 KB before compression, as
    /// it sits in web/ and as it is served (hashed names make it a little longer).
    #[test]
    fn the_client_is_at_most_150_kb() {
        let source: usize = Assets::iter()
            .filter_map(|p| Assets::get(&p))
            .map(|f| f.data.len())
            .sum();
        let t = Table::embedded();
        let served: usize = t
            .index
            .iter()
            .chain(t.hashed.values())
            .map(|s| s.body.len())
            .sum();
        assert!(source > 10_000, "web/ looks empty: {source} bytes");
        assert!(source <= 150_000, "web/ is {source} bytes, over 150,000");
        assert!(
            served <= 150_000,
            "the served client is {served} bytes, over 150,000"
        );
    }

    #[test]
    fn the_embedded_page_names_only_hashed_assets() {
        let t = Table::embedded();
        let html = text(t.index_body());
        for asset in ["app.css", "js/main.js", "js/theme.js", "favicon.svg"] {
            let url = t.url(asset).expect(asset);
            assert!(html.contains(&format!("\"{url}\"")), "index lacks {url}");
            assert!(
                !html.contains(&format!("\"/{asset}\"")),
                "index names /{asset}"
            );
        }
        // main.js imports relative to itself: under /assets/ with hashed names.
        let main = text(t.hashed_body(t.url("js/main.js").expect("main")));
        let app = t.url("js/app.js").expect("app.js");
        let app_file = app.rsplit('/').next().expect("file name");
        assert!(main.contains(&format!("'./{app_file}'")), "main.js: {main}");
        assert!(
            !main.contains("'./app.js'"),
            "main.js imports the unhashed app.js"
        );
    }

    #[test]
    fn references_are_rewritten_and_hashes_follow_imports() {
        let site = |util: &str| {
            files(&[
                (
                    "index.html",
                    "<link rel=\"stylesheet\" href=\"/a.css\"><script type=\"module\" \
                     src=\"/js/main.js\"></script><a href=\"https://x.test/a.css\">",
                ),
                ("a.css", "body{background:url(/img/b.svg)}"),
                ("img/b.svg", "<svg/>"),
                (
                    "js/main.js",
                    "import {u} from './views/v.js';\nimport('../a.css');",
                ),
                (
                    "js/views/v.js",
                    "import {x} from \"../util.js\"; // from 'x.js'",
                ),
                ("js/util.js", util),
            ])
        };
        let t1 = Table::build(&site("export const x = 1;"));
        let t2 = Table::build(&site("export const x = 2;"));
        let main1 = t1.url("js/main.js").expect("main");
        let v1 = t1.url("js/views/v.js").expect("v");
        let util1 = t1.url("js/util.js").expect("util");
        let css1 = t1.url("a.css").expect("css");
        let svg1 = t1.url("img/b.svg").expect("svg");
        assert!(
            main1.starts_with("/assets/js/main.") && main1.ends_with(".js"),
            "{main1}"
        );
        assert_eq!(
            main1.len(),
            "/assets/js/main..js".len() + HASH_HEX,
            "{main1}"
        );

        let html = text(t1.index_body());
        assert_eq!(
            html,
            format!(
                "<link rel=\"stylesheet\" href=\"{css1}\"><script type=\"module\" \
                 src=\"{main1}\"></script><a href=\"https://x.test/a.css\">"
            )
        );
        assert_eq!(
            text(t1.hashed_body(css1)),
            format!("body{{background:url({svg1})}}")
        );
        let file = |u: &str| u.rsplit('/').next().expect("name").to_string();
        assert_eq!(
            text(t1.hashed_body(main1)),
            format!(
                "import {{u}} from './views/{}';\nimport('../{}');",
                file(v1),
                file(css1)
            )
        );
        assert_eq!(
            text(t1.hashed_body(v1)),
            format!("import {{x}} from \"../{}\"; // from 'x.js'", file(util1))
        );

        // A change deep down renames the file and everything that imports it, and
        // nothing else.
        for changed in ["js/util.js", "js/views/v.js", "js/main.js"] {
            assert_ne!(t1.url(changed), t2.url(changed), "{changed} kept its URL");
        }
        for same in ["a.css", "img/b.svg"] {
            assert_eq!(t1.url(same), t2.url(same), "{same} changed its URL");
        }
        assert_ne!(t1.index_body(), t2.index_body());
        assert!(t1.hashed_body("/assets/js/main.00000000.js").is_none());
    }

    #[test]
    fn modules_lose_their_header_comment_but_keep_line_numbers() {
        let src = "// A module.\n// Two lines.\nconst a = '// not a comment';\n// kept\n";
        assert_eq!(
            strip_header("a.js", src.as_bytes()),
            b"\n\nconst a = '// not a comment';\n// kept\n"
        );
        assert_eq!(strip_header("a.js", b"// only"), b"");
        assert_eq!(strip_header("a.css", b"// x\n"), b"// x\n");
        let t = Table::build(&files(&[
            ("m.js", "// Hi.\nimport {a} from './a.js';"),
            ("a.js", ""),
        ]));
        let a = t.url("a.js").expect("a").trim_start_matches("/assets/");
        assert_eq!(
            text(t.hashed_body(t.url("m.js").expect("m"))),
            format!("\nimport {{a}} from './{a}';")
        );
    }

    #[test]
    fn import_cycles_hash_without_looping() {
        let t = Table::build(&files(&[
            ("a.js", "import {b} from './b.js';"),
            ("b.js", "import {a} from './a.js';"),
        ]));
        let a = t.url("a.js").expect("a");
        let b = t.url("b.js").expect("b");
        assert_eq!(
            text(t.hashed_body(a)),
            format!(
                "import {{b}} from './{}';",
                b.trim_start_matches("/assets/")
            )
        );
        assert_eq!(
            text(t.hashed_body(b)),
            format!(
                "import {{a}} from './{}';",
                a.trim_start_matches("/assets/")
            )
        );
    }

    #[test]
    fn specifiers_resolve_like_a_browser() {
        assert_eq!(
            resolve("js/views", "../util.js").as_deref(),
            Some("js/util.js")
        );
        assert_eq!(
            resolve("js", "./views/a.js").as_deref(),
            Some("js/views/a.js")
        );
        assert_eq!(resolve("js", "/app.css").as_deref(), Some("app.css"));
        assert_eq!(resolve("", "../../x.js"), None);
        assert_eq!(resolve("js", "lit"), None);
        assert_eq!(resolve("", "data:image/png;base64,AA"), None);
        assert_eq!(resolve("", "//cdn.test/x.js"), None);
        assert_eq!(resolve("", "/app.css?v=1"), None);
        assert_eq!(hashed_name("js/a.b.js", "h"), "js/a.b.h.js");
        assert_eq!(hashed_name("LICENSE", "h"), "LICENSE.h");
        assert_eq!(hashed_name("js/.hidden", "h"), "js/.hidden.h");
    }
}
