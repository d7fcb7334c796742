//! SPEC §6 attachments, §7 `POST /uploads`, sending with `attachment_ids`, serving
//! attachment URLs, §10 attachment limit.

use futures_util::future::join_all;
use serde_json::{Value, json};

use crate::support::*;

fn header(r: &Resp, name: &str) -> String {
    r.headers
        .get(name)
        .map(|v| v.to_str().unwrap_or("").to_string())
        .unwrap_or_default()
}

/// The headers every served attachment must carry.
#[track_caller]
fn check_safe_headers(r: &Resp, inline: bool, what: &str) {
    assert_eq!(
        header(r, "x-content-type-options"),
        "nosniff",
        "{what}: nosniff"
    );
    let csp = header(r, "content-security-policy");
    assert!(
        csp.contains("sandbox"),
        "{what}: CSP without sandbox: {csp:?}"
    );
    let cd = header(r, "content-disposition").to_ascii_lowercase();
    let want = if inline { "inline" } else { "attachment" };
    assert!(
        cd.starts_with(want),
        "{what}: Content-Disposition {cd:?}, want {want}"
    );
}

fn encode(img: image::DynamicImage, format: image::ImageFormat) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, format).expect("encode");
    out.into_inner()
}

fn rgb(w: u32, h: u32) -> image::DynamicImage {
    image::DynamicImage::ImageRgb8(image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([(x * 7) as u8, (y * 5) as u8, 90])
    }))
}

fn rgba(w: u32, h: u32) -> image::DynamicImage {
    image::DynamicImage::ImageRgba8(image::RgbaImage::from_fn(w, h, |x, y| {
        image::Rgba([(x * 3) as u8, (y * 11) as u8, 40, 255])
    }))
}

async fn send_with(api: &Api, room: &str, body: &str, attachments: &[&str]) -> Resp {
    send_raw(
        api,
        room,
        json!({"body": body, "client_id": format!("c-{}", uuid_like()), "attachment_ids": attachments}),
    )
    .await
}

/// No file under the data dir holds `marker` (a refused upload stored nothing).
#[track_caller]
fn nothing_stored(env: &Env, marker: &[u8], what: &str) {
    for (path, bytes) in all_bytes_under(&env.data_dir) {
        assert!(
            !contains_bytes(&bytes, marker),
            "{what}: the bytes are on the server's disk in {}",
            path.display()
        );
    }
}

both!(
    images_are_sniffed_thumbnailed_sent_and_served_to_members,
    |env| {
        let (_root, alice, bob) = trio(&env).await;
        let carol = env.register("carol", PW).await;
        let room = new_room(&alice, "photos", json!({})).await;
        join_ok(&bob, &room).await;
        let mut bws = bob.connect().await;

        let bytes = png(64, 32);
        let a = upload_ok(&alice, "pic.png", "image/png", bytes.clone()).await;
        for k in [
            "id",
            "name",
            "content_type",
            "size",
            "url",
            "thumbnail_url",
            "width",
            "height",
        ] {
            assert!(a.get(k).is_some(), "attachment lacks {k}: {a}");
        }
        assert_eq!(a["name"], "pic.png");
        assert_eq!(a["content_type"], "image/png");
        assert_eq!(int(&a["size"]), bytes.len() as i64);
        assert_eq!((int(&a["width"]), int(&a["height"])), (64, 32));
        let url = s(&a["url"]);
        let thumb = s(&a["thumbnail_url"]);

        // Before it is sent, only the uploader may fetch it.
        let r = alice.get(&url).await;
        ok(&r, "uploader fetches an unsent upload");
        assert_eq!(r.bytes, bytes);
        check_safe_headers(&r, true, "unsent image");
        let r = bob.get(&url).await;
        err_any(
            &r,
            &["not_found", "forbidden"],
            "another member fetching an unsent upload",
        );
        let r = env.http().get(&url).await;
        err(&r, "unauthorized", "anonymous fetch");

        // Sent with an empty body.
        let r = send_with(&alice, &room, "", &[&s(&a["id"])]).await;
        ok(&r, "send an attachment without text");
        let m = r.body;
        assert_eq!(m["body"], "");
        assert_eq!(
            m["attachments"],
            json!([a.clone()]),
            "the message carries the attachment"
        );
        let (_, ev) = until(&mut bws, |v| is_msg_id(v, &s(&m["id"]))).await;
        assert_eq!(ev["message"]["attachments"], json!([a.clone()]));
        let h = all_messages(&bob, &room).await;
        assert_eq!(h.last().unwrap()["attachments"], json!([a.clone()]));

        // Members fetch the file and its thumbnail.
        let r = bob.get(&url).await;
        ok(&r, "member fetches the file");
        assert_eq!(r.bytes, bytes);
        assert!(header(&r, "content-type").starts_with("image/png"));
        check_safe_headers(&r, true, "image");
        let r = bob.get(&thumb).await;
        ok(&r, "member fetches the thumbnail");
        assert!(header(&r, "content-type").starts_with("image/"));
        assert_eq!(header(&r, "x-content-type-options"), "nosniff");
        let t = image::load_from_memory(&r.bytes).expect("the thumbnail is an image");
        let thumb_dims = (t.width(), t.height());

        // A non-member of this public room does not.
        for u in [&url, &thumb] {
            let r = carol.get(u).await;
            err_any(
                &r,
                &["forbidden", "not_found"],
                "non-member fetching a room's file",
            );
        }
        // Private room files: outsiders get not_found.
        let private = new_room(&alice, "private", json!({"kind": "private"})).await;
        let p = upload_ok(&alice, "secret.png", "image/png", png(31, 17)).await;
        let r = send_with(&alice, &private, "secret", &[&s(&p["id"])]).await;
        ok(&r, "send in private room");
        let r = carol.get(&s(&p["url"])).await;
        err(&r, "not_found", "outsider fetching a private room's file");
        let r = bob.get(&s(&p["thumbnail_url"])).await;
        err(
            &r,
            "not_found",
            "outsider fetching a private room's thumbnail",
        );

        // Formats are recognised by their bytes, whatever is declared.
        for (name, declared, data, ct, w, h) in [
            (
                "photo.bin",
                "application/octet-stream",
                encode(rgb(40, 30), image::ImageFormat::Jpeg),
                "image/jpeg",
                40,
                30,
            ),
            (
                "anim.gif",
                "image/gif",
                encode(rgba(21, 13), image::ImageFormat::Gif),
                "image/gif",
                21,
                13,
            ),
            (
                "modern.webp",
                "image/webp",
                encode(rgba(19, 23), image::ImageFormat::WebP),
                "image/webp",
                19,
                23,
            ),
            (
                "mislabelled.jpg",
                "image/jpeg",
                png(12, 34),
                "image/png",
                12,
                34,
            ),
        ] {
            let a = upload_ok(&alice, name, declared, data.clone()).await;
            assert_eq!(a["content_type"], ct, "{name}: {a}");
            assert_eq!((int(&a["width"]), int(&a["height"])), (w, h), "{name}: {a}");
            assert!(a["thumbnail_url"].is_string(), "{name}: {a}");
            let r = alice.get(&s(&a["url"])).await;
            ok(&r, name);
            assert_eq!(r.bytes, data, "{name}: served bytes");
            assert!(header(&r, "content-type").starts_with(ct), "{name}");
        }

        // A thumbnail is never larger than its image (checked last so that everything
        // above runs either way).
        assert!(
            thumb_dims.0 <= 64 && thumb_dims.1 <= 32,
            "the thumbnail of a 64x32 image is {}x{}: thumbnails must not upscale",
            thumb_dims.0,
            thumb_dims.1
        );
    }
);

both!(other_files_are_downloads_never_rendered, |env| {
    let (_root, alice, bob) = trio(&env).await;
    let room = new_room(&alice, "files", json!({})).await;
    join_ok(&bob, &room).await;

    let notes = b"meeting notes\nline two\n".to_vec();
    let a = upload_ok(&alice, "notes.txt", "text/plain", notes.clone()).await;
    assert_eq!(a["name"], "notes.txt");
    assert!(s(&a["content_type"]).starts_with("text/plain"), "{a}");
    assert_eq!(int(&a["size"]), notes.len() as i64);
    assert!(
        a["width"].is_null() && a["height"].is_null() && a["thumbnail_url"].is_null(),
        "{a}"
    );

    let html = b"<html><script>alert(document.cookie)</script></html>".to_vec();
    let h = upload_ok(&alice, "page.html", "text/html", html.clone()).await;
    assert!(h["thumbnail_url"].is_null());

    // SVG can carry script: it is either refused or kept as a plain download.
    let svg = b"<svg xmlns=\"http://www.w3.org/2000/svg\" onload=\"alert(1)\"/>".to_vec();
    let r = upload(&alice, "vector.svg", "image/svg+xml", svg.clone()).await;
    let svg_att = if is_ok(&r) {
        assert!(r.body["thumbnail_url"].is_null(), "{}", text(&r));
        assert!(r.body["width"].is_null(), "{}", text(&r));
        assert!(
            !s(&r.body["content_type"]).contains("svg"),
            "an SVG must not be served as an image: {}",
            text(&r)
        );
        Some(r.body)
    } else {
        invalid(&r, "file", "SVG upload");
        None
    };

    // Directory parts never reach the stored name.
    let d = upload_ok(
        &alice,
        "../../etc/report.pdf",
        "application/pdf",
        b"%PDF-1.4 fake".to_vec(),
    )
    .await;
    let name = s(&d["name"]);
    assert!(!name.contains('/') && !name.contains('\\'), "name {name:?}");

    let mut ids_to_send = vec![s(&a["id"]), s(&h["id"]), s(&d["id"])];
    if let Some(x) = &svg_att {
        ids_to_send.push(s(&x["id"]));
    }
    let refs: Vec<&str> = ids_to_send.iter().map(String::as_str).collect();
    let r = send_with(&alice, &room, "files", &refs).await;
    ok(&r, "send files");
    assert_eq!(r.body["attachments"].as_array().unwrap().len(), refs.len());

    let r = bob.get(&s(&a["url"])).await;
    ok(&r, "fetch text");
    assert_eq!(r.bytes, notes);
    check_safe_headers(&r, false, "text file");
    let r = bob.get(&s(&h["url"])).await;
    ok(&r, "fetch html");
    assert_eq!(r.bytes, html);
    check_safe_headers(&r, false, "HTML file");
    if let Some(x) = &svg_att {
        let r = bob.get(&s(&x["url"])).await;
        ok(&r, "fetch svg");
        check_safe_headers(&r, false, "SVG file");
        assert!(!header(&r, "content-type").contains("svg"));
    }
    let r = bob.get(&s(&d["url"])).await;
    ok(&r, "fetch pdf");
    check_safe_headers(&r, false, "PDF file");
    let r = bob.get(&format!("{}/thumbnail", s(&a["url"]))).await;
    err(&r, "not_found", "thumbnail of a non-image");
});

both!(attachment_ids_must_be_the_senders_unsent_uploads, |env| {
    let (_root, alice, bob) = trio(&env).await;
    let room = new_room(&alice, "attach", json!({})).await;
    join_ok(&bob, &room).await;
    let mut aws = alice.connect().await;
    let bobs = upload_ok(&bob, "bob.txt", "text/plain", b"bob's file".to_vec()).await;
    let mine = upload_ok(&alice, "mine.txt", "text/plain", b"alice's file".to_vec()).await;
    let seq0 = last_seq(&alice, &room).await;

    // Someone else's upload, alone or beside one's own.
    let r = send_with(&alice, &room, "stolen", &[&s(&bobs["id"])]).await;
    invalid(&r, "attachment_ids", "someone else's attachment");
    let r = send_with(&alice, &room, "mixed", &[&s(&mine["id"]), &s(&bobs["id"])]).await;
    invalid(&r, "attachment_ids", "own and someone else's attachment");
    let mut f = send_frame(&room, "stolen over the gateway");
    f["attachment_ids"] = json!([bobs["id"]]);
    let (reply, _) = call(&mut aws, f).await;
    reply_err(
        &reply,
        "invalid",
        "gateway send with someone else's attachment",
    );
    // Unknown ids.
    let r = send_with(&alice, &room, "ghost", &["nope"]).await;
    invalid(&r, "attachment_ids", "unknown attachment");
    let r = send_with(&alice, &room, "ghost", &[&s(&mine["id"]), "nope"]).await;
    invalid(&r, "attachment_ids", "own and unknown attachment");
    // An empty body needs attachments.
    let r = send_with(&alice, &room, "  ", &[]).await;
    invalid(&r, "body", "empty body without attachments");

    // Nothing changed: nothing sent, both uploads still usable by their owners, and
    // bob's file still private to him.
    assert_eq!(
        last_seq(&alice, &room).await,
        seq0,
        "a refused send stored a message"
    );
    let r = alice.get(&s(&bobs["url"])).await;
    err_any(
        &r,
        &["not_found", "forbidden"],
        "fetching someone else's unsent upload",
    );
    let r = send_with(&bob, &room, "mine", &[&s(&bobs["id"])]).await;
    ok(&r, "bob sends his own upload");
    let r = send_with(&alice, &room, "", &[&s(&mine["id"])]).await;
    ok(&r, "alice sends hers");
    let sent = r.body;
    assert_eq!(sent["seq"], seq0 + 2);
    let (before, ev) = until(&mut aws, |v| {
        v["type"] == "message" && v["message"]["room_id"] == room.as_str()
    })
    .await;
    assert_eq!(
        int(&ev["message"]["seq"]),
        seq0 + 1,
        "the first message event is bob's: {}",
        short(&before)
    );

    // An upload goes into one message only; retrying the same send is safe.
    let r = send_with(&alice, &room, "again", &[&s(&mine["id"])]).await;
    invalid(&r, "attachment_ids", "reusing a sent attachment");
    let mut f = send_frame(&room, "again over the gateway");
    f["attachment_ids"] = json!([mine["id"]]);
    let (reply, _) = call(&mut aws, f).await;
    reply_err(&reply, "invalid", "gateway reuse of a sent attachment");
    let retry = upload_ok(&alice, "retry.txt", "text/plain", b"retry me".to_vec()).await;
    let body = json!({"body": "retry", "client_id": "retry-1", "attachment_ids": [retry["id"]]});
    let first = send_raw(&alice, &room, body.clone()).await;
    ok(&first, "first send");
    let second = send_raw(&alice, &room, body).await;
    ok(&second, "retried send with the same client_id");
    assert_eq!(
        second.body["id"], first.body["id"],
        "a retry returns the original"
    );
    assert_eq!(last_seq(&alice, &room).await, seq0 + 3);
    let h = all_messages(&bob, &room).await;
    let with_mine: Vec<&Value> = h
        .iter()
        .filter(|m| {
            m["attachments"]
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a["id"] == mine["id"])
        })
        .collect();
    assert_eq!(
        with_mine.len(),
        1,
        "the attachment is in exactly one message"
    );
    assert_eq!(with_mine[0]["id"], sent["id"]);
});

both!(
    forbidden_upload_content_is_refused_and_nothing_is_stored,
    |env| {
        let (_root, alice, _bob) = trio(&env).await;
        let marker = format!("MARK-{}-refused", uuid_like()).into_bytes();
        let with = |head: &[u8]| -> Vec<u8> {
            let mut v = head.to_vec();
            v.extend_from_slice(&marker);
            v
        };
        let mut truncated = png(50, 50);
        truncated.truncate(40);
        truncated.extend_from_slice(&marker);
        let cases: Vec<(&str, &str, Vec<u8>)> = vec![
            (
                "setup.exe",
                "application/octet-stream",
                with(b"MZ\x90\x00\x03\x00"),
            ),
            ("setup.txt", "text/plain", with(b"MZ\x90\x00")),
            ("tool", "application/x-elf", with(b"\x7fELF\x02\x01\x01")),
            ("tool.png", "image/png", with(b"\x7fELF\x02\x01\x01")),
            ("empty.txt", "text/plain", Vec::new()),
            ("fake.png", "image/png", with(b"this is not an image ")),
            ("fake.jpg", "image/jpeg", with(b"GIF? no. ")),
            ("truncated.png", "image/png", truncated),
        ];
        for (name, ct, bytes) in cases {
            let r = upload(&alice, name, ct, bytes).await;
            err(&r, "invalid", &format!("upload {name} ({ct})"));
        }
        // A multipart body without a `file` field, and a body that is not multipart.
        let form = reqwest::multipart::Form::new()
            .text("other", String::from_utf8_lossy(&marker).to_string());
        let r = alice
            .send(
                alice
                    .request(reqwest::Method::POST, "/api/v1/uploads")
                    .multipart(form),
            )
            .await;
        err(&r, "invalid", "multipart without a file field");
        let r = alice
            .send(
                alice
                    .request(reqwest::Method::POST, "/api/v1/uploads")
                    .header("Content-Type", "application/json")
                    .body(json!({"file": "x"}).to_string()),
            )
            .await;
        assert!(
            (400..500).contains(&r.status),
            "non-multipart upload: {} {}",
            r.status,
            text(&r)
        );
        // Uploads need a session.
        let anon = env.http();
        let r = upload(&anon, "a.txt", "text/plain", with(b"anon ")).await;
        err(&r, "unauthorized", "anonymous upload");

        // A tiny PNG that claims to be 100000x100000 pixels: refused, not decoded.
        let mut bomb = png(1, 1);
        bomb[16..20].copy_from_slice(&100_000u32.to_be_bytes());
        bomb[20..24].copy_from_slice(&100_000u32.to_be_bytes());
        let crc = crc32(&bomb[12..29]);
        bomb[29..33].copy_from_slice(&crc.to_be_bytes());
        let r = upload(&alice, "bomb.png", "image/png", bomb).await;
        err_any(&r, &["too_large", "invalid"], "decompression bomb");

        nothing_stored(&env, &marker, "refused uploads");
        // The server keeps serving uploads.
        let a = upload_ok(&alice, "fine.txt", "text/plain", b"fine".to_vec()).await;
        assert_eq!(int(&a["size"]), 4);
    }
);

/// An oversized upload must be answered `too_large` (413) in a way the client can read.
async fn expect_too_large(api: &Api, name: &str, ct: &str, bytes: Vec<u8>, what: &str) {
    let n = bytes.len();
    match upload_streaming(api, name, ct, bytes).await {
        Ok((status, body)) => {
            assert!(
                status == 413 && body["error"]["code"] == "too_large",
                "{what} ({n} bytes): expected 413 too_large, got {status} {body}"
            );
            assert!(
                body["error"]["message"]
                    .as_str()
                    .is_some_and(|m| !m.is_empty()),
                "{what}: no message: {body}"
            );
        }
        Err(e) => panic!(
            "{what} ({n} bytes): the client could not read an answer (expected 413 too_large): {e}"
        ),
    }
}

both!(
    uploads_over_the_limit_are_too_large,
    ["--max-attachment-bytes", "100000"],
    |env| {
        let (_root, alice, _bob) = trio(&env).await;
        let marker = format!("MARK-{}-big", uuid_like()).into_bytes();
        let sized = |m: &[u8], n: usize, fill: u8| -> Vec<u8> {
            let mut v = m.to_vec();
            v.resize(n, fill);
            v
        };
        let a = upload_ok(
            &alice,
            "exact.txt",
            "text/plain",
            sized(&marker, 100_000, b'x'),
        )
        .await;
        assert_eq!(int(&a["size"]), 100_000, "exactly the limit is accepted");
        let over = format!("MARK-{}-over", uuid_like()).into_bytes();
        for n in [100_001, 300_000, 2_000_000] {
            expect_too_large(
                &alice,
                "big.txt",
                "text/plain",
                sized(&over, n, b'y'),
                "over the limit",
            )
            .await;
        }
        let mut img = png(400, 400);
        img.resize(img.len().max(100_500), 0); // padding after IEND: still a PNG
        expect_too_large(
            &alice,
            "big.png",
            "image/png",
            img,
            "an image over the limit",
        )
        .await;
        nothing_stored(&env, &over, "oversized uploads");
        // Still serving.
        upload_ok(&alice, "small.txt", "text/plain", b"small".to_vec()).await;
    }
);

both!(the_default_limit_is_25_mib, |env| {
    let (_root, alice, _bob) = trio(&env).await;
    let limit = 25 * 1024 * 1024;
    let mut v = vec![b'w'; limit];
    v[..5].copy_from_slice(b"max! ");
    let a = upload_ok(&alice, "max.txt", "text/plain", v).await;
    assert_eq!(int(&a["size"]), limit as i64, "25 MiB exactly is accepted");
    let mut v = vec![b'z'; limit + 1];
    v[..5].copy_from_slice(b"big! ");
    expect_too_large(&alice, "huge.txt", "text/plain", v, "25 MiB + 1 byte").await;
    let v = vec![b'q'; limit + 4 * 1024 * 1024];
    expect_too_large(&alice, "huger.txt", "text/plain", v, "29 MiB").await;
});

both!(deleting_a_message_deletes_its_files, |env| {
    let (_root, alice, bob) = trio(&env).await;
    let room = new_room(&alice, "ephemeral", json!({})).await;
    join_ok(&bob, &room).await;
    let img = png(77, 33);
    let a1 = upload_ok(&alice, "one.png", "image/png", img.clone()).await;
    let doc_bytes = format!("doomed document {}", uuid_like()).into_bytes();
    let doc = upload_ok(&alice, "doc.txt", "text/plain", doc_bytes.clone()).await;
    // The same bytes in another message.
    let a2 = upload_ok(&alice, "two.png", "image/png", img.clone()).await;
    let r = send_with(
        &alice,
        &room,
        "with files",
        &[&s(&a1["id"]), &s(&doc["id"])],
    )
    .await;
    ok(&r, "send");
    let m1 = r.body;
    let r = send_with(&alice, &room, "same picture", &[&s(&a2["id"])]).await;
    ok(&r, "send same picture");
    for u in [&a1["url"], &a1["thumbnail_url"], &doc["url"], &a2["url"]] {
        let r = bob.get(&s(u)).await;
        ok(&r, &format!("fetch {u} before the delete"));
    }
    let mut bws = bob.connect().await;

    let r = alice
        .delete(&format!("/api/v1/messages/{}", s(&m1["id"])))
        .await;
    ok(&r, "delete");
    let (_, ev) = until(&mut bws, |v| touches(v, &s(&m1["id"]))).await;
    assert_eq!(ev["type"], "message_deleted", "{ev}");
    let tomb = message(&bob, &s(&m1["id"])).await;
    assert_eq!(tomb["deleted"], true);
    assert_eq!(
        tomb["attachments"],
        json!([]),
        "tombstones have no attachments"
    );
    for who in [&bob, &alice] {
        for u in [&a1["url"], &a1["thumbnail_url"], &doc["url"]] {
            let r = who.get(&s(u)).await;
            err(&r, "not_found", &format!("{u} after the delete"));
        }
    }
    // The other message's copy of the same picture is untouched.
    let r = bob.get(&s(&a2["url"])).await;
    ok(&r, "the other message's file");
    assert_eq!(r.bytes, img);
    let r = bob.get(&s(&a2["thumbnail_url"])).await;
    ok(&r, "the other message's thumbnail");
    // A deleted attachment cannot be sent again.
    let r = send_with(&alice, &room, "resurrect", &[&s(&a1["id"])]).await;
    invalid(
        &r,
        "attachment_ids",
        "sending a deleted message's attachment",
    );
    // The file itself is gone from the server's disk.
    nothing_stored(&env, &doc_bytes, "a deleted message's file");
});

both!(deleting_a_room_deletes_its_files, |env| {
    let (_root, alice, bob) = trio(&env).await;
    let room = new_room(&alice, "short-lived", json!({})).await;
    join_ok(&bob, &room).await;
    let bytes = format!("room file {}", uuid_like()).into_bytes();
    let a = upload_ok(&alice, "notes.txt", "text/plain", bytes.clone()).await;
    let img = upload_ok(&bob, "pic.png", "image/png", png(41, 43)).await;
    let r = send_with(&alice, &room, "notes", &[&s(&a["id"])]).await;
    ok(&r, "send");
    let r = send_with(&bob, &room, "", &[&s(&img["id"])]).await;
    ok(&r, "send");
    let r = bob.get(&s(&a["url"])).await;
    ok(&r, "fetch before");

    let r = alice.delete(&format!("/api/v1/rooms/{room}")).await;
    ok(&r, "owner deletes the room");
    for who in [&alice, &bob] {
        for u in [&a["url"], &img["url"], &img["thumbnail_url"]] {
            let r = who.get(&s(u)).await;
            err(&r, "not_found", &format!("{u} after the room was deleted"));
        }
    }
    nothing_stored(&env, &bytes, "a deleted room's file");
});

both!(one_upload_goes_into_one_message_even_under_races, |env| {
    let (_root, alice, bob) = trio(&env).await;
    let room = new_room(&alice, "race", json!({})).await;
    join_ok(&bob, &room).await;
    let a = upload_ok(&alice, "once.txt", "text/plain", b"only once".to_vec()).await;
    let aid = s(&a["id"]);
    let seq0 = last_seq(&alice, &room).await;
    let results = join_all((0..6).map(|i| {
        let aid = aid.clone();
        let room = room.clone();
        let alice = &alice;
        async move { send_with(alice, &room, &format!("take {i}"), &[&aid]).await }
    }))
    .await;
    let winners: Vec<&Resp> = results.iter().filter(|r| is_ok(r)).collect();
    assert_eq!(
        winners.len(),
        1,
        "exactly one send gets the attachment: {:?}",
        results
            .iter()
            .map(|r| (r.status, text(r)))
            .collect::<Vec<_>>()
    );
    for r in results.iter().filter(|r| !is_ok(r)) {
        invalid(r, "attachment_ids", "a losing send");
    }
    assert_eq!(
        last_seq(&alice, &room).await,
        seq0 + 1,
        "only the winner was stored"
    );

    // Over the gateway, with an empty body.
    let b = upload_ok(&alice, "gw.png", "image/png", png(5, 7)).await;
    let mut aws = alice.connect().await;
    let mut f = send_frame(&room, "");
    f["attachment_ids"] = json!([b["id"]]);
    let (reply, _) = call(&mut aws, f).await;
    reply_ok(&reply, "gateway send with an attachment");
    assert_eq!(reply["data"]["attachments"], json!([b.clone()]));
    let r = bob.get(&s(&b["url"])).await;
    ok(&r, "member fetches the gateway-sent file");

    // Names keep their characters; the download header still works.
    let u = upload_ok(
        &alice,
        "résumé 2024 (final).txt",
        "text/plain",
        b"cv".to_vec(),
    )
    .await;
    assert_eq!(u["name"], "résumé 2024 (final).txt");
    let r = alice.get(&s(&u["url"])).await;
    ok(&r, "fetch a file with a non-ASCII name");
    assert!(header(&r, "content-disposition").starts_with("attachment"));
});

both!(
    a_caption_can_be_edited_away_when_there_are_attachments,
    |env| {
        let (_root, alice, _bob) = trio(&env).await;
        let room = new_room(&alice, "captions", json!({})).await;
        let a = upload_ok(&alice, "c.png", "image/png", png(6, 6)).await;
        let r = send_with(&alice, &room, "a caption", &[&s(&a["id"])]).await;
        ok(&r, "send with caption");
        let with = s(&r.body["id"]);
        let plain = send(&alice, &room, "just text").await;

        // A message without attachments cannot become empty.
        let r = alice
            .patch(
                &format!("/api/v1/messages/{}", s(&plain["id"])),
                json!({"body": "  "}),
            )
            .await;
        invalid(&r, "body", "emptying a text-only message");
        assert_eq!(message(&alice, &s(&plain["id"])).await["body"], "just text");

        // One with attachments may (SPEC §6: not empty unless it has attachments).
        let r = alice
            .patch(&format!("/api/v1/messages/{with}"), json!({"body": ""}))
            .await;
        ok(&r, "removing the caption of an attachment message");
        assert_eq!(r.body["body"], "");
        assert_eq!(r.body["attachments"], json!([a.clone()]));
    }
);
