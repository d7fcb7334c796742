//! SPEC §4: avatar upload (raw and multipart), validation, serving, defaults, reset.

use reqwest::Method;
use serde_json::json;

use crate::common::*;
use crate::support::*;

const MIB: usize = 1024 * 1024;

async fn upload_raw(api: &Api, content_type: &str, bytes: Vec<u8>) -> Resp {
    raw(api, Method::PUT, "/api/v1/me/avatar", content_type, bytes).await
}

async fn upload_multipart(api: &Api, bytes: Vec<u8>, mime: &str) -> Resp {
    let part = reqwest::multipart::Part::bytes(bytes)
        .file_name("avatar.png")
        .mime_str(mime)
        .unwrap();
    let form = reqwest::multipart::Form::new().part("file", part);
    api.send(
        api.request(Method::PUT, "/api/v1/me/avatar")
            .multipart(form),
    )
    .await
}

/// Fetches an avatar anonymously; returns the response.
async fn fetch(server: &Server, url: &str) -> Resp {
    server.http().get(url).await
}

#[track_caller]
fn assert_image_response(r: &Resp, what: &str) {
    assert_eq!(r.status, 200, "{what}: avatar fetch failed: {}", text(r));
    let ct = r
        .headers
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    assert!(
        ct.starts_with("image/"),
        "{what}: content-type {ct:?} is not an image"
    );
    assert!(!r.bytes.is_empty(), "{what}: empty avatar");
}

#[track_caller]
fn assert_cacheable(r: &Resp, what: &str) {
    let cc = r
        .headers
        .get("cache-control")
        .unwrap_or_else(|| panic!("{what}: no Cache-Control header"))
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    assert!(
        !cc.contains("no-store") && !cc.contains("no-cache") && !cc.contains("private"),
        "{what}: Cache-Control {cc:?} is not cacheable"
    );
    assert!(
        cc.contains("max-age") || cc.contains("immutable") || cc.contains("public"),
        "{what}: Cache-Control {cc:?} gives no caching lifetime"
    );
}

fn decode(bytes: &[u8], what: &str) -> image::RgbImage {
    image::load_from_memory(bytes)
        .unwrap_or_else(|e| panic!("{what}: served avatar does not decode: {e}"))
        .to_rgb8()
}

#[tokio::test]
async fn raw_upload_is_center_cropped_resized_and_served_publicly() {
    let server = fast().await;
    let alice = server.register("alice", PW).await;
    let before = s(&me(&alice).await["avatar_url"]);

    // 300×100: red | green | blue bands; the center square is all green.
    let r = upload_raw(&alice, "image/png", png_bands(100, 100)).await;
    ok(&r, "PUT /me/avatar raw png");
    let url = s(&me(&alice).await["avatar_url"]);
    assert_ne!(url, before, "avatar_url must change with a new avatar");
    assert!(
        url.starts_with(&format!("/api/v1/avatars/{}?v=", alice.id())),
        "avatar_url {url} should be /api/v1/avatars/<id>?v=<hash>"
    );

    let r = fetch(&server, &url).await; // no authentication
    assert_image_response(&r, "uploaded avatar");
    assert_cacheable(&r, "uploaded avatar");
    let img = decode(&r.bytes, "uploaded avatar");
    assert_eq!(img.dimensions(), (256, 256), "avatar must be 256×256");
    for (x, y) in [(4, 4), (251, 4), (4, 251), (251, 251), (128, 128)] {
        let p = img.get_pixel(x, y);
        assert!(
            p[1] > 150 && p[0] < 100 && p[2] < 100,
            "pixel ({x},{y}) = {p:?}: the avatar should be the green center square (center-crop)"
        );
    }
    // Same bytes for every client.
    let again = fetch(&server, &url).await;
    assert_eq!(again.bytes, r.bytes);
}

#[tokio::test]
async fn multipart_upload_with_field_file() {
    let server = fast().await;
    let alice = server.register("alice", PW).await;
    let before = s(&me(&alice).await["avatar_url"]);
    let r = upload_multipart(&alice, png(64, 64), "image/png").await;
    ok(&r, "PUT /me/avatar multipart");
    let url = s(&me(&alice).await["avatar_url"]);
    assert_ne!(url, before);
    let r = fetch(&server, &url).await;
    assert_image_response(&r, "multipart avatar");
    assert_eq!(
        decode(&r.bytes, "multipart avatar").dimensions(),
        (256, 256)
    );
}

#[tokio::test]
async fn declared_content_type_is_not_trusted() {
    let server = fast().await;
    let alice = server.register("alice", PW).await;
    // Real PNG declared as JPEG: decoded by its content, accepted.
    let r = upload_raw(&alice, "image/jpeg", png(40, 40)).await;
    ok(&r, "PNG declared as image/jpeg");
    let url = s(&me(&alice).await["avatar_url"]);
    assert_eq!(
        decode(&fetch(&server, &url).await.bytes, "png-as-jpeg").dimensions(),
        (256, 256)
    );
    // Text declared as PNG: refused.
    let r = upload_raw(
        &alice,
        "image/png",
        b"just some text pretending to be a PNG".to_vec(),
    )
    .await;
    err(&r, "invalid", "text declared as image/png");
    assert_eq!(
        s(&me(&alice).await["avatar_url"]),
        url,
        "avatar changed by a refused upload"
    );
}

#[tokio::test]
async fn bad_uploads_are_refused_and_change_nothing() {
    let server = fast().await;
    let alice = server.register("alice", PW).await;
    let r = upload_raw(&alice, "image/png", png(32, 32)).await;
    ok(&r, "good avatar");
    let url = s(&me(&alice).await["avatar_url"]);
    let good_bytes = fetch(&server, &url).await.bytes;

    let mut padded_big = png(8, 8);
    padded_big.resize(5 * MIB + 1, 0);
    let mut truncated = png(64, 64);
    truncated.truncate(truncated.len() - 20);
    let mut bad_jpeg = vec![0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10];
    bad_jpeg.extend_from_slice(b"JFIF\0 but then garbage garbage garbage");

    let cases: Vec<(&str, &str, Vec<u8>, &str)> = vec![
        (
            "plain text",
            "image/png",
            b"hello, I am not an image at all".to_vec(),
            "invalid",
        ),
        (
            "html",
            "image/gif",
            b"<html><script>alert(1)</script></html>".to_vec(),
            "invalid",
        ),
        ("empty body", "image/png", Vec::new(), "invalid"),
        ("truncated png", "image/png", truncated, "invalid"),
        ("corrupt jpeg", "image/jpeg", bad_jpeg, "invalid"),
        ("over 5 MiB", "image/png", padded_big, "too_large"),
        (
            "PNG claiming 10000×10000 (bomb)",
            "image/png",
            png_claiming(10_000, 10_000),
            "too_large",
        ),
        (
            "PNG claiming 8000×6000 (48 MP)",
            "image/png",
            png_claiming(8_000, 6_000),
            "too_large",
        ),
    ];
    for (what, ct, bytes, code) in cases {
        let r = upload_raw(&alice, ct, bytes).await;
        err(&r, code, what);
        let now = s(&me(&alice).await["avatar_url"]);
        assert_eq!(now, url, "{what}: avatar_url changed by a refused upload");
        assert_eq!(
            fetch(&server, &url).await.bytes,
            good_bytes,
            "{what}: avatar bytes changed"
        );
    }
    // The same limits apply to multipart.
    let mut big = png(8, 8);
    big.resize(5 * MIB + 1, 0);
    let r = upload_multipart(&alice, big, "image/png").await;
    err(&r, "too_large", "multipart over 5 MiB");
    let r = upload_multipart(&alice, png_claiming(10_000, 10_000), "image/png").await;
    err(&r, "too_large", "multipart decompression bomb");
    let r = upload_multipart(&alice, b"not an image".to_vec(), "image/png").await;
    err(&r, "invalid", "multipart non-image");
    assert_eq!(s(&me(&alice).await["avatar_url"]), url);
}

#[tokio::test]
async fn an_image_just_under_5_mib_is_accepted() {
    let server = fast().await;
    let alice = server.register("alice", PW).await;
    let mut bytes = png(16, 16);
    bytes.resize(5 * MIB - 4096, 0); // trailing bytes after IEND are ignored by decoders
    let r = upload_raw(&alice, "image/png", bytes).await;
    ok(&r, "avatar just under 5 MiB");
}

#[tokio::test]
async fn default_avatar_is_served_deterministically() {
    let server = fast().await;
    let alice = server.register("alice", PW).await;
    let bob = server.register("bob", PW).await;
    let url = s(&me(&alice).await["avatar_url"]);
    let a1 = fetch(&server, &url).await;
    assert_image_response(&a1, "default avatar");
    let a2 = alice.get(&url).await; // authenticated client: same image
    assert_eq!(
        a1.bytes, a2.bytes,
        "default avatar must be the same bytes every time"
    );
    // Also through the bare path without ?v=.
    let bare = fetch(&server, &format!("/api/v1/avatars/{}", alice.id())).await;
    assert_image_response(&bare, "default avatar without ?v");
    assert_eq!(bare.bytes, a1.bytes);
    // It depends on the user: bob's is different.
    let b = fetch(&server, &s(&me(&bob).await["avatar_url"])).await;
    assert_image_response(&b, "bob default avatar");
    assert_ne!(
        b.bytes, a1.bytes,
        "default avatars of different names should differ"
    );
}

#[tokio::test]
async fn unknown_user_avatar_is_not_found() {
    let server = fast().await;
    let r = server.http().get("/api/v1/avatars/no-such-user").await;
    err(&r, "not_found", "avatar of an unknown user");
}

#[tokio::test]
async fn guest_can_join_with_a_data_url_avatar() {
    let server = fast().await;
    let data_url = format!("data:image/png;base64,{}", base64(&png_bands(40, 40)));
    let r = server
        .http()
        .post(
            "/api/v1/auth/guest",
            json!({"name": "painter", "avatar": data_url}),
        )
        .await;
    assert_eq!(r.status, 200, "guest with avatar: {}", text(&r));
    let url = s(&r.body["user"]["avatar_url"]);
    let img = fetch(&server, &url).await;
    assert_image_response(&img, "guest avatar");
    let pix = decode(&img.bytes, "guest avatar");
    assert_eq!(pix.dimensions(), (256, 256));
    let p = pix.get_pixel(128, 128);
    assert!(
        p[1] > 150 && p[0] < 100,
        "guest avatar should be the uploaded image: {p:?}"
    );

    // A bad data URL is refused and creates no session (the name stays free).
    for bad in [
        "data:image/png;base64,!!!not-base64!!!".to_string(),
        format!("data:image/png;base64,{}", base64(b"plain text")),
        "https://example.com/a.png".to_string(),
    ] {
        let r = server
            .http()
            .post(
                "/api/v1/auth/guest",
                json!({"name": "sketcher", "avatar": bad}),
            )
            .await;
        invalid(&r, Some("avatar"), &format!("guest avatar {bad:?}"));
    }
    let bomb = format!(
        "data:image/png;base64,{}",
        base64(&png_claiming(10_000, 10_000))
    );
    let r = server
        .http()
        .post(
            "/api/v1/auth/guest",
            json!({"name": "sketcher", "avatar": bomb}),
        )
        .await;
    err(&r, "too_large", "guest avatar decompression bomb");
    let r = server
        .http()
        .post("/api/v1/auth/guest", json!({"name": "sketcher"}))
        .await;
    assert_eq!(
        r.status,
        200,
        "name still free after refused joins: {}",
        text(&r)
    );
}

#[tokio::test]
async fn delete_avatar_resets_to_the_default() {
    let server = fast().await;
    let alice = server.register("alice", PW).await;
    let default_url = s(&me(&alice).await["avatar_url"]);
    let default_bytes = fetch(&server, &default_url).await.bytes;
    let r = upload_raw(&alice, "image/png", png(50, 50)).await;
    ok(&r, "upload");
    let uploaded = s(&me(&alice).await["avatar_url"]);
    assert_ne!(uploaded, default_url);
    let r = alice.delete("/api/v1/me/avatar").await;
    ok(&r, "DELETE /me/avatar");
    let after = s(&me(&alice).await["avatar_url"]);
    assert_ne!(after, uploaded, "avatar_url must change after reset");
    let now = fetch(&server, &after).await;
    assert_image_response(&now, "reset avatar");
    assert_eq!(
        now.bytes, default_bytes,
        "after reset the default avatar is served again"
    );
}

#[tokio::test]
async fn avatar_change_broadcasts_user_updated() {
    let server = fast().await;
    let alice = server.register("alice", PW).await;
    let bob = server.register("bob", PW).await;
    let mut bws = bob.connect().await;
    let r = upload_raw(&alice, "image/png", png(30, 30)).await;
    ok(&r, "upload");
    let url = s(&me(&alice).await["avatar_url"]);
    let aid = alice.id();
    let (_, ev) = until(&mut bws, |v| {
        v["type"] == "user_updated"
            && v["user"]["id"] == aid.as_str()
            && v["user"]["avatar_url"] == url.as_str()
    })
    .await;
    assert_eq!(ev["user"]["username"], "alice");
}

#[tokio::test]
async fn avatar_upload_requires_authentication() {
    let server = fast().await;
    let anon = server.http();
    let r = raw(
        &anon,
        Method::PUT,
        "/api/v1/me/avatar",
        "image/png",
        png(10, 10),
    )
    .await;
    err(&r, "unauthorized", "anonymous avatar upload");
}
