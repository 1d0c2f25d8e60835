//! Event images: multipart upload into the media store (a real folder here),
//! type told by content, size and dimension limits, public URLs served back.

use serde_json::Value;

use crate::harness::TestApp;

/// A real 1×1 PNG.
pub(crate) const PIXEL_PNG: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4,
    0x89, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0xf8, 0xcf, 0xc0, 0xf0,
    0x1f, 0x00, 0x05, 0x00, 0x01, 0xff, 0x89, 0x99, 0x3d, 0x1d, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45,
    0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
];

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A PNG signature and header chunk declaring `width`×`height`, padded to
/// `len` bytes: what the upload check reads.
fn png_header(width: u32, height: u32, len: usize) -> Vec<u8> {
    let mut out = vec![0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13];
    let mut chunk = b"IHDR".to_vec();
    chunk.extend(width.to_be_bytes());
    chunk.extend(height.to_be_bytes());
    chunk.extend([8, 6, 0, 0, 0]);
    out.extend(&chunk);
    out.extend(crc32(&chunk).to_be_bytes());
    out.resize(len.max(out.len()), 0);
    out
}

/// Hand-built multipart body (no extra client features needed).
pub(crate) async fn upload(
    app: &TestApp,
    token: &str,
    event_id: &str,
    part: &str,
    bytes: &[u8],
) -> (u16, Value) {
    let boundary = "----boxoffice-test-boundary";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"{part}\"; filename=\"cover.png\"\r\nContent-Type: image/png\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    app.send(
        app.client
            .post(app.url(&format!("/v1/events/{event_id}/images")))
            .bearer_auth(token)
            .header(
                "content-type",
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(body),
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn images_are_uploaded_listed_served_and_deleted() {
    let app = TestApp::builder()
        .with_config(|c| {
            c.media.max_image_bytes = 64 * 1024;
            c.media.max_images_per_event = 3;
        })
        .start()
        .await;
    let org = app.organizer("pics@example.com").await;
    let event = app.create_event(&org, serde_json::json!({})).await;
    let id = event["id"].as_str().unwrap();

    let (status, image) = upload(&app, &org, id, "file", PIXEL_PNG).await;
    assert_eq!(status, 201, "{image}");
    assert_eq!(
        (image["width"].as_i64(), image["height"].as_i64()),
        (Some(1), Some(1))
    );
    assert_eq!(image["content_type"], "image/png");
    assert_eq!(image["size_bytes"].as_u64(), Some(PIXEL_PNG.len() as u64));
    let url = image["url"].as_str().unwrap();
    let path = url
        .strip_prefix("http://boxoffice.test")
        .expect("public URL under MEDIA_PUBLIC_URL");

    // Served back byte for byte, with an immutable cache header.
    let served = app.client.get(app.url(path)).send().await.unwrap();
    assert_eq!(served.status(), 200);
    assert_eq!(served.headers()["content-type"], "image/png");
    assert!(
        served.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("immutable")
    );
    assert_eq!(served.bytes().await.unwrap().as_ref(), PIXEL_PNG);

    // Dimensions come from the file.
    let (status, wide) = upload(&app, &org, id, "file", &png_header(1920, 1080, 2048)).await;
    assert_eq!(status, 201, "{wide}");
    assert_eq!(
        (wide["width"].as_i64(), wide["height"].as_i64()),
        (Some(1920), Some(1080))
    );

    // Listed on the event.
    let (_, managed) = app.get(&format!("/v1/events/{id}"), Some(&org)).await;
    let urls: Vec<&str> = managed["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["url"].as_str().unwrap())
        .collect();
    assert_eq!(urls.len(), 2);
    assert!(urls.contains(&url));

    // Refusals, none of which writes anything.
    let (status, problem) = upload(
        &app,
        &org,
        id,
        "file",
        b"<svg xmlns='http://www.w3.org/2000/svg'/>",
    )
    .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (415, Some("unsupported_media_type"))
    );
    let (status, problem) = upload(&app, &org, id, "file", &png_header(20_000, 10, 1024)).await;
    assert_eq!(
        (status, problem["errors"][0]["field"].as_str()),
        (422, Some("file"))
    );
    // Over the image limit (64 KiB here), within the request's.
    let (status, problem) = upload(&app, &org, id, "file", &png_header(100, 100, 100 * 1024)).await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (413, Some("payload_too_large"))
    );
    let (status, problem) = upload(&app, &org, id, "photo", PIXEL_PNG).await;
    assert_eq!(
        (status, problem["errors"][0]["field"].as_str()),
        (422, Some("file"))
    );
    let (status, _) = app
        .send(
            app.client
                .post(app.url(&format!("/v1/events/{id}/images")))
                .bearer_auth(&org)
                .json(&serde_json::json!({"url": "x"})),
        )
        .await;
    assert_eq!(status, 415);
    let rival = app.organizer("rival-pics@example.com").await;
    let (status, _) = upload(&app, &rival, id, "file", PIXEL_PNG).await;
    assert_eq!(status, 404);
    assert_eq!(app.count("event_images").await, 2);

    // At most three per event.
    let (status, _) = upload(&app, &org, id, "file", PIXEL_PNG).await;
    assert_eq!(status, 201);
    let (status, problem) = upload(&app, &org, id, "file", PIXEL_PNG).await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (409, Some("too_many_images"))
    );
    assert_eq!(app.count("event_images").await, 3);

    // Deleting removes the row and the object.
    let image_id = image["id"].as_str().unwrap();
    let (status, _) = app
        .delete(&format!("/v1/events/{id}/images/{image_id}"), Some(&rival))
        .await;
    assert_eq!(status, 404);
    let (status, _) = app
        .delete(&format!("/v1/events/{id}/images/{image_id}"), Some(&org))
        .await;
    assert_eq!(status, 204);
    let gone = app.client.get(app.url(path)).send().await.unwrap();
    assert_eq!(gone.status(), 404);
    assert_eq!(app.count("event_images").await, 2);
    let (status, _) = app
        .delete(&format!("/v1/events/{id}/images/{image_id}"), Some(&org))
        .await;
    assert_eq!(status, 404);

    // Paths outside what we write are never served.
    for bad in [
        "/media/../Cargo.toml",
        "/media/events/x/y.png",
        "/media/etc/passwd",
    ] {
        let response = app.client.get(app.url(bad)).send().await.unwrap();
        assert_eq!(response.status(), 404, "{bad}");
    }
}
