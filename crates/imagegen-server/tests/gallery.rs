//! The gallery's pages against a gateway on the simulator: each page and the ids the
//! browser tests rely on, images appearing, filters, thumbnails, deletion, sign-in, the
//! same-origin rule for forms, a key holder's view, escaping.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Gateway, json, sim, start, start_with};
use imagegen::sim::ImageSize;
use imagegen::{Credits, JobHandle};
use imagegen_ledger::api_keys::{ApiKey, ExposeSecret, NewApiKey};
use imagegen_ledger::{AcceptedJob, ImageQuery, JobFinish, NewImage};
use serde_json::{Value, json};

/// A client that does not follow redirects, so a test sees them.
fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// A page's status and HTML.
async fn page(gateway: &Gateway, path: &str, cookie: Option<&str>) -> (u16, String) {
    let mut request = browser().get(gateway.url(path));
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

/// Every `href="…"` in `html` that starts with `prefix`.
fn links(html: &str, prefix: &str) -> Vec<String> {
    html.split("href=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .filter(|href| href.starts_with(prefix))
        .map(|href| href.replace("&amp;", "&"))
        .collect()
}

/// The tiles of a grid page: their links.
fn tiles(html: &str) -> Vec<String> {
    html.split("<li class=\"tile\"><a href=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .map(str::to_owned)
        .collect()
}

/// Generates `body` and returns the response's JSON.
async fn generated(gateway: &Gateway, body: Value) -> Value {
    let response = gateway.generate(&body).await;
    assert_eq!(response.status(), 200);
    json(response).await
}

/// The detail path of the response's first image.
fn detail_of(response: &Value) -> String {
    response["imagegen"]["images"][0]["detail"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// A form POST as a browser on `origin` sends it.
async fn post_form(
    gateway: &Gateway,
    path: &str,
    origin: Option<&str>,
    cookie: Option<&str>,
    form: &str,
) -> reqwest::Response {
    let mut request = browser()
        .post(gateway.url(path))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form.to_owned());
    if let Some(origin) = origin {
        request = request.header("origin", origin);
    }
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    request.send().await.unwrap()
}

/// The gateway's own origin, as its pages send it.
fn origin(gateway: &Gateway) -> String {
    gateway.server.url().trim_end_matches('/').to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_renders_with_the_ids_the_browser_tests_use() {
    let gateway = start().await;
    let (status, grid) = page(&gateway, "/", None).await;
    assert_eq!(status, 200);
    for needle in [
        "<nav",
        "<header",
        "<main",
        "href=\"/generate\"",
        "href=\"/spend\"",
        "id=\"filters\"",
        "name=\"provider\"",
        "name=\"model\"",
        "name=\"from\"",
        "name=\"to\"",
        "name=\"q\"",
        "id=\"grid\"",
        "id=\"empty\"",
        "/assets/gallery.css?v=",
    ] {
        assert!(grid.contains(needle), "{needle} in {grid}");
    }

    let response = generated(&gateway, json!({"prompt": "a lighthouse at dusk"})).await;
    let detail = detail_of(&response);
    assert!(detail.starts_with("/images/"), "{detail}");

    let (status, generate) = page(&gateway, "/generate", None).await;
    assert_eq!(status, 200);
    for needle in [
        "id=\"generate\"",
        "<textarea id=\"prompt\"",
        "<select id=\"shape\"",
        "<input id=\"count\" name=\"n\" type=\"number\"",
        "<select id=\"model\"",
        "<select id=\"quality\"",
        "<select id=\"style\"",
        "id=\"submit\"",
        "<table id=\"plans\"",
        "<tbody>",
        "id=\"progress\"",
        "<progress",
        "aria-valuenow=\"0\"",
        "id=\"status\"",
        "id=\"result\"",
        "value=\"1536x1024\"",
        "value=\"kolbo/z-image/turbo\"",
    ] {
        assert!(generate.contains(needle), "{needle} in {generate}");
    }

    let (status, detail_html) = page(&gateway, &detail, None).await;
    assert_eq!(status, 200, "{detail_html}");
    for needle in [
        "id=\"image\"",
        "id=\"prompt\"",
        "id=\"revised-prompt\"",
        "id=\"provider\"",
        "id=\"model\"",
        "id=\"route\"",
        "id=\"credits\"",
        "id=\"usd\"",
        "id=\"timings\"",
        "<a id=\"download\" href=\"/v1/files/",
        " download=\"",
        "<a id=\"rerun\" href=\"/generate?prompt=a%20lighthouse%20at%20dusk",
        "id=\"delete\"",
        "alt=\"a lighthouse at dusk\"",
    ] {
        assert!(detail_html.contains(needle), "{needle} in {detail_html}");
    }
    // The download link serves the image.
    let download = links(&detail_html, "/v1/files/")[0].clone();
    let file = gateway
        .http
        .get(gateway.url(&download))
        .send()
        .await
        .unwrap();
    assert_eq!(file.status(), 200);

    let (status, confirm) = page(&gateway, &format!("{detail}/delete"), None).await;
    assert_eq!(status, 200);
    assert!(confirm.contains("<form id=\"confirm-delete\" method=\"post\""));
    assert!(confirm.contains("id=\"confirm\""));

    let (status, spend) = page(&gateway, "/spend", None).await;
    assert_eq!(status, 200);
    for needle in [
        "<svg id=\"spend-chart\"",
        "data-provider=\"",
        "data-day=\"",
        "data-credits=\"",
        "<table id=\"totals\"",
        "<tr data-provider=\"",
        "<td class=\"credits\">",
        "id=\"total-credits\"",
        "id=\"budgets\"",
    ] {
        assert!(spend.contains(needle), "{needle} in {spend}");
    }
    let credits = response["imagegen"]["credits"].to_string();
    assert!(
        spend.contains(&format!("data-credits=\"{}\"", credits.trim_matches('"'))),
        "{spend}"
    );

    for asset in ["/assets/gallery.css", "/assets/gallery.js"] {
        let response = gateway.http.get(gateway.url(asset)).send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert!(
            response.headers()["cache-control"]
                .to_str()
                .unwrap()
                .contains("immutable")
        );
    }
    // The gallery's routes stay out of the API's: an unknown path is still OpenAI's 404.
    let unknown = gateway.http.get(gateway.url("/nope")).send().await.unwrap();
    assert_eq!(unknown.status(), 404);
    gateway.server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_images_appear_and_filters_narrow_the_grid() {
    let gateway = start().await;
    let fox = generated(
        &gateway,
        json!({"prompt": "a red fox", "model": "kolbo/z-image/turbo"}),
    )
    .await;
    let owl = generated(
        &gateway,
        json!({"prompt": "a snowy owl", "model": "koala/gpt-image-2"}),
    )
    .await;
    let (fox_page, owl_page) = (detail_of(&fox), detail_of(&owl));

    let (_, grid) = page(&gateway, "/", None).await;
    assert_eq!(
        tiles(&grid),
        vec![owl_page.clone(), fox_page.clone()],
        "newest first"
    );
    assert!(!grid.contains("id=\"empty\""));
    assert!(!grid.contains("id=\"more\""));

    let (_, by_text) = page(&gateway, "/?q=FOX", None).await;
    assert_eq!(tiles(&by_text), vec![fox_page.clone()]);
    let (_, by_provider) = page(&gateway, "/?provider=koala", None).await;
    assert_eq!(tiles(&by_provider), vec![owl_page.clone()]);
    let (_, by_model) = page(&gateway, "/?model=kolbo%2Fz-image%2Fturbo", None).await;
    assert_eq!(tiles(&by_model), vec![fox_page.clone()]);
    let (_, contradictory) = page(
        &gateway,
        "/?provider=koala&model=kolbo%2Fz-image%2Fturbo",
        None,
    )
    .await;
    assert!(tiles(&contradictory).is_empty());
    assert!(contradictory.contains("id=\"empty\""));
    let (_, long_ago) = page(&gateway, "/?from=2001-01-01&to=2001-01-02", None).await;
    assert!(tiles(&long_ago).is_empty());
    let (_, since_then) = page(&gateway, "/?from=2001-01-01", None).await;
    assert_eq!(tiles(&since_then).len(), 2);

    // The feed answers what arrived since a time, with the same filters.
    let feed = gateway
        .http
        .get(gateway.url("/gallery/feed?since=0&provider=kolbo"))
        .send()
        .await
        .unwrap();
    let feed = json(feed).await;
    assert_eq!(feed["tiles"].as_array().unwrap().len(), 1, "{feed}");
    assert_eq!(feed["tiles"][0]["href"], json!(fox_page));

    // Pages of 40: a 41st image makes a "Load more" link to the rest.
    let ledger = gateway.server.ledger();
    let entry = ledger
        .images(&ImageQuery::newest(1))
        .await
        .unwrap()
        .remove(0);
    for i in 0..40 {
        let job = AcceptedJob::new(
            JobHandle::new("kolbo", format!("extra-{i}"), 1, 1_000 + i),
            "filler",
            "out",
            Credits::ZERO,
        );
        ledger.record_accepted(&job).await.unwrap();
        let image = NewImage::new(0, &entry.image.path);
        ledger
            .finish_job(
                &"kolbo".into(),
                &format!("extra-{i}"),
                &JobFinish::done(2_000 + i, vec![image]),
            )
            .await
            .unwrap();
    }
    let (_, first) = page(&gateway, "/", None).await;
    assert_eq!(tiles(&first).len(), 40);
    let more = links(&first, "/?after=");
    assert_eq!(more.len(), 1, "{first}");
    let (_, second) = page(&gateway, &more[0], None).await;
    assert_eq!(tiles(&second).len(), 2, "{second}");
    assert!(!second.contains("id=\"more\""));
    gateway.server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thumbnails_are_small_jpegs_kept_on_disk() {
    let gateway = start_with(sim().with_image_size(ImageSize::MaxSide(600)), |c| c).await;
    let response = generated(
        &gateway,
        json!({"prompt": "a wide valley", "size": "1536x1024"}),
    )
    .await;
    let sha = response["imagegen"]["images"][0]["sha256"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, grid) = page(&gateway, "/", None).await;
    assert!(
        grid.contains(&format!("src=\"/thumbs/{sha}.jpg\"")),
        "{grid}"
    );
    let thumb = gateway
        .http
        .get(gateway.url(&format!("/thumbs/{sha}.jpg")))
        .send()
        .await
        .unwrap();
    assert_eq!(thumb.status(), 200);
    assert_eq!(thumb.headers()["content-type"], "image/jpeg");
    assert!(
        thumb.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("immutable")
    );
    let bytes = thumb.bytes().await.unwrap();
    assert!(bytes.starts_with(&[0xFF, 0xD8, 0xFF]));
    let decoded = image::load_from_memory(&bytes).unwrap();
    assert!(decoded.width().max(decoded.height()) <= 256);
    assert!(
        gateway
            .images
            .join("thumbs")
            .join(format!("{sha}.jpg"))
            .is_file()
    );
    // Only stored images' names.
    for bad in [
        "/thumbs/../ledger.sqlite3",
        "/thumbs/abc.jpg",
        &format!("/thumbs/{sha}.png"),
    ] {
        let response = gateway.http.get(gateway.url(bad)).send().await.unwrap();
        assert_eq!(response.status(), 404, "{bad}");
    }
    gateway.server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_removes_the_row_and_the_file_unless_another_row_uses_it() {
    let gateway = start().await;
    let response = generated(&gateway, json!({"prompt": "a paper boat"})).await;
    let detail = detail_of(&response);
    let ledger = gateway.server.ledger();
    let entry = ledger
        .images(&ImageQuery::newest(1))
        .await
        .unwrap()
        .remove(0);
    let file = entry.image.path.clone();
    assert!(file.starts_with(&gateway.images) && file.is_file());
    // A second row naming the same file (the same bytes saved twice).
    let job = AcceptedJob::new(
        JobHandle::new("kolbo", "twin", 1, 1_000),
        "a twin",
        "out",
        Credits::ZERO,
    );
    ledger.record_accepted(&job).await.unwrap();
    let sha = entry.image.sha256.clone().unwrap();
    let twin = NewImage::new(0, &file).with_content(&sha, entry.image.bytes.unwrap(), "image/png");
    ledger
        .finish_job(&"kolbo".into(), "twin", &JobFinish::done(2_000, vec![twin]))
        .await
        .unwrap();
    // A thumbnail made, to be removed with the file.
    let thumb = gateway
        .http
        .get(gateway.url(&format!("/thumbs/{sha}.jpg")))
        .send()
        .await
        .unwrap();
    assert_eq!(thumb.status(), 200);

    let origin = origin(&gateway);
    let deleted = post_form(
        &gateway,
        &format!("{detail}/delete"),
        Some(&origin),
        None,
        "",
    )
    .await;
    assert_eq!(deleted.status(), 303);
    assert_eq!(deleted.headers()["location"], "/");
    let (status, _) = page(&gateway, &detail, None).await;
    assert_eq!(status, 404);
    assert!(file.is_file(), "another row still uses the file");

    let deleted = post_form(
        &gateway,
        "/images/kolbo/twin/0/delete",
        Some(&origin),
        None,
        "",
    )
    .await;
    assert_eq!(deleted.status(), 303);
    assert!(!file.exists(), "the last row's file goes with it");
    assert!(
        !gateway
            .images
            .join("thumbs")
            .join(format!("{sha}.jpg"))
            .exists()
    );
    let (_, grid) = page(&gateway, "/", None).await;
    assert!(tiles(&grid).is_empty());
    gateway.server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cross_site_form_cannot_delete() {
    let gateway = start().await;
    let response = generated(&gateway, json!({"prompt": "a kite"})).await;
    let action = format!("{}/delete", detail_of(&response));
    for (origin, fetch_site) in [
        (Some("http://evil.example"), None),
        (Some("null"), None),
        (None, Some("cross-site")),
        (None, None),
    ] {
        let mut request = browser()
            .post(gateway.url(&action))
            .header("content-type", "application/x-www-form-urlencoded");
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        if let Some(site) = fetch_site {
            request = request.header("sec-fetch-site", site);
        }
        let refused = request.send().await.unwrap();
        assert_eq!(refused.status(), 403, "{origin:?} {fetch_site:?}");
    }
    let (status, _) = page(&gateway, &detail_of(&response), None).await;
    assert_eq!(status, 200, "still there");
    // The gallery's own page (Sec-Fetch-Site alone) may.
    let allowed = browser()
        .post(gateway.url(&action))
        .header("sec-fetch-site", "same-origin")
        .send()
        .await
        .unwrap();
    assert_eq!(allowed.status(), 303);
    gateway.server.shutdown().await.unwrap();
}

/// A live gateway key named `name`, made in the gateway's ledger; its secret.
async fn make_key(gateway: &Gateway, name: &str, limit: u32) -> String {
    let key = ApiKey::generate().unwrap();
    let new = NewApiKey::new(name, &key).with_limit(Credits::whole(limit));
    gateway.server.ledger().create_api_key(&new).await.unwrap();
    key.secret().expose_secret().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_in_sets_a_cookie_that_authorizes_pages_and_the_api() {
    let gateway = start().await;
    // Without keys there is nothing to sign in with.
    let (status, _) = page(&gateway, "/login", None).await;
    assert_eq!(status, 303);
    let secret = make_key(&gateway, "browser", 10).await;

    let response = browser()
        .get(gateway.url("/spend?x=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    assert_eq!(
        response.headers()["location"],
        "/login?next=%2Fspend%3Fx%3D1"
    );
    let (status, login) = page(&gateway, "/login?next=%2Fspend", None).await;
    assert_eq!(status, 200);
    assert!(login.contains("<form id=\"login\" method=\"post\" action=\"/login\""));

    let origin = origin(&gateway);
    let wrong = post_form(
        &gateway,
        "/login",
        Some(&origin),
        None,
        "key=igk_0123456789abcdef0123456789abcdef01234567&next=%2Fspend",
    )
    .await;
    assert_eq!(wrong.status(), 401);
    let text = wrong.text().await.unwrap();
    assert!(
        !text.contains("0123456789abcdef0123"),
        "a key is never shown"
    );

    let cross = post_form(
        &gateway,
        "/login",
        Some("http://evil.example"),
        None,
        &format!("key={secret}"),
    )
    .await;
    assert_eq!(cross.status(), 403);
    assert!(cross.headers().get("set-cookie").is_none());

    let signed = post_form(
        &gateway,
        "/login",
        Some(&origin),
        None,
        &format!("key={secret}&next=%2Fspend"),
    )
    .await;
    assert_eq!(signed.status(), 303);
    assert_eq!(signed.headers()["location"], "/spend");
    let set = signed.headers()["set-cookie"].to_str().unwrap().to_owned();
    for part in ["imagegen_key=", "HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set.contains(part), "{set}");
    }
    assert!(!set.contains("Secure"), "not over plain http");
    let cookie = set.split(';').next().unwrap().to_owned();

    for path in ["/", "/generate", "/spend"] {
        let (status, html) = page(&gateway, path, Some(&cookie)).await;
        assert_eq!(status, 200, "{path}");
        assert!(!html.contains(&secret), "the key is never in a page");
        assert!(html.contains("action=\"/logout\""));
    }
    // The page's own fetches to the API carry the cookie too.
    let estimate = gateway
        .http
        .post(gateway.url("/v1/estimate"))
        .header("cookie", &cookie)
        .json(&json!({"prompt": "a fox"}))
        .send()
        .await
        .unwrap();
    assert_eq!(estimate.status(), 200);
    let signed_out = browser().get(gateway.url("/logout")).send().await.unwrap();
    assert_eq!(signed_out.status(), 303);
    assert!(
        signed_out.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    gateway.server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_holder_sees_only_its_own_images_and_spend() {
    let gateway = start().await;
    let alice = make_key(&gateway, "alice", 10).await;
    let bob = make_key(&gateway, "bob", 10).await;
    let generate = |secret: String, prompt: &'static str| {
        let http = gateway.http.clone();
        let url = gateway.url("/v1/images/generations");
        async move {
            let response = http
                .post(url)
                .bearer_auth(secret)
                .json(&json!({"prompt": prompt, "model": "kolbo/z-image/turbo"}))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
            json(response).await
        }
    };
    let mine = generate(alice.clone(), "alice's fox").await;
    let theirs = generate(bob.clone(), "bob's owl").await;
    generate(bob.clone(), "bob's second owl").await;
    let cookie = format!("imagegen_key={alice}");

    let (_, grid) = page(&gateway, "/", Some(&cookie)).await;
    assert_eq!(tiles(&grid), vec![detail_of(&mine)]);
    let (status, _) = page(&gateway, &detail_of(&theirs), Some(&cookie)).await;
    assert_eq!(status, 404, "another key's image is not there for alice");
    let refused = post_form(
        &gateway,
        &format!("{}/delete", detail_of(&theirs)),
        Some(&origin(&gateway)),
        Some(&cookie),
        "",
    )
    .await;
    assert_eq!(refused.status(), 404);
    let feed = gateway
        .http
        .get(gateway.url("/gallery/feed?since=0"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(json(feed).await["tiles"].as_array().unwrap().len(), 1);

    let (_, spend) = page(&gateway, "/spend", Some(&cookie)).await;
    assert!(
        spend.contains("<td id=\"total-credits\" class=\"credits\">0.5</td>"),
        "{spend}"
    );
    assert_eq!(spend.matches("class=\"budget\"").count(), 1, "{spend}");
    assert!(spend.contains("alice") && !spend.contains("bob"), "{spend}");
    gateway.server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prompts_are_escaped() {
    let gateway = start().await;
    let prompt = "<script>alert(1)</script> & \"quotes\"";
    let response = generated(&gateway, json!({"prompt": prompt})).await;
    let (_, grid) = page(&gateway, "/", None).await;
    let (_, detail) = page(&gateway, &detail_of(&response), None).await;
    let (_, rerun) = page(&gateway, &links(&detail, "/generate?")[0], None).await;
    for html in [&grid, &detail, &rerun] {
        assert!(!html.contains("<script>alert"), "{html}");
        assert!(
            html.contains("&#60;script&#62;alert(1)&#60;/script&#62;"),
            "{html}"
        );
    }
    gateway.server.shutdown().await.unwrap();
}

/// The simulator's Kolbo library, as its moodboards and visual DNA lists give it.
const WARM_FILM: &str = "6601a1b2c3d4e5f6a7b8c9d0";
const NEON_NOIR: &str = "6601a1b2c3d4e5f6a7b8c9d1";
const CAPTAIN_MIRA: &str = "65f1a2b3c4d5e6f7a8b9c0d1";
const AERO_SNEAKER: &str = "65f0c0ffee0000000000a002";

/// `POST /v1/estimate` with `body`, as the generate page's script sends it.
async fn estimate(gateway: &Gateway, body: &Value) -> reqwest::Response {
    gateway
        .http
        .post(gateway.url("/v1/estimate"))
        .json(body)
        .send()
        .await
        .unwrap()
}

/// The candidates of an estimate: (provider, eligible, reason).
fn candidates(estimate: &Value) -> Vec<(String, bool, String)> {
    estimate["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["provider"].as_str().unwrap().to_owned(),
                c["eligible"].as_bool().unwrap(),
                c["reason"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// Starts a background generation with `body` (as the page's script submits it) and
/// reads it to its end.
async fn generate_in_background(gateway: &Gateway, body: &Value) -> Value {
    let started = gateway
        .http
        .post(gateway.url("/v1/generations"))
        .json(body)
        .send()
        .await
        .unwrap();
    assert_eq!(started.status(), 202);
    let id = json(started).await["id"].as_str().unwrap().to_owned();
    let url = gateway.url(&format!("/v1/generations/{id}"));
    tokio::time::timeout(std::time::Duration::from_secs(30), async {
        loop {
            let body = json(gateway.http.get(&url).send().await.unwrap()).await;
            if body["status"] != "running" {
                return body;
            }
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the generation finished")
}

/// Every `id` of an `input`, `select` or `textarea` in `html`.
fn field_ids(html: &str) -> Vec<String> {
    ["<input id=\"", "<select id=\"", "<textarea id=\""]
        .iter()
        .flat_map(|start| {
            html.split(start)
                .skip(1)
                .filter_map(|rest| rest.split('"').next())
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_generate_form_offers_the_kolbo_accounts_moodboards_visual_dna_and_reference_images() {
    let gateway = start().await;
    let (status, html) = page(&gateway, "/generate", None).await;
    assert_eq!(status, 200, "{html}");
    for needle in [
        "<fieldset id=\"kolbo-options\"",
        "<legend>Kolbo options</legend>",
        "<select id=\"moodboard\" name=\"moodboard_id\"",
        "<option value=\"\" selected>none</option>",
        &format!("<option value=\"{WARM_FILM}\">Warm Film</option>"),
        &format!("<option value=\"{NEON_NOIR}\">Neon Noir</option>"),
        "<fieldset id=\"visual-dna\"",
        "<legend>Visual DNA (up to 3)</legend>",
        &format!(
            "<input id=\"dna-1\" name=\"visual_dna_ids\" type=\"checkbox\" value=\"{CAPTAIN_MIRA}\">"
        ),
        "<label for=\"dna-1\">Captain Mira (character)</label>",
        &format!("name=\"visual_dna_ids\" type=\"checkbox\" value=\"{AERO_SNEAKER}\">"),
        "<fieldset id=\"references\"",
        "<legend>Reference images</legend>",
        "<label for=\"ref-1\">Reference image 1 URL</label>",
        "<input id=\"ref-1\" name=\"reference_images\" type=\"url\"",
        "<button id=\"add-reference\" class=\"secondary\" type=\"button\">",
    ] {
        assert!(html.contains(needle), "{needle} in {html}");
    }
    // Every field has its label.
    for id in field_ids(&html) {
        assert!(
            html.contains(&format!("<label for=\"{id}\"")),
            "no label for #{id}"
        );
    }

    // A re-run's Kolbo options and references come back chosen.
    let (status, rerun) = page(
        &gateway,
        &format!(
            "/generate?prompt=a%20fox&moodboard_id={NEON_NOIR}&visual_dna_ids={AERO_SNEAKER}&reference_images=https%3A%2F%2Fa.example%2Fr1.png&reference_images=https%3A%2F%2Fa.example%2Fr2.png"
        ),
        None,
    )
    .await;
    assert_eq!(status, 200, "{rerun}");
    for needle in [
        format!("<option value=\"{NEON_NOIR}\" selected>Neon Noir</option>"),
        format!("type=\"checkbox\" value=\"{AERO_SNEAKER}\" checked>"),
        format!("<input id=\"dna-1\" name=\"visual_dna_ids\" type=\"checkbox\" value=\"{CAPTAIN_MIRA}\">"),
        "id=\"ref-1\" name=\"reference_images\" type=\"url\" inputmode=\"url\" placeholder=\"https://…\" value=\"https://a.example/r1.png\"".to_owned(),
        "id=\"ref-2\" name=\"reference_images\" type=\"url\" inputmode=\"url\" placeholder=\"https://…\" value=\"https://a.example/r2.png\"".to_owned(),
    ] {
        assert!(rerun.contains(&needle), "{needle} in {rerun}");
    }
    assert!(!rerun.contains("id=\"ref-3\""), "{rerun}");

    // The account's lists were read once for both pages (Kolbo counts moodboard reads
    // against its generation rate limit).
    let log = gateway.sim().request_log();
    assert_eq!(log.count(imagegen::sim::Route::KolboMoodboards), 1);
    gateway.server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_forms_kolbo_options_and_references_reach_the_estimate_and_the_generation() {
    let gateway = start().await;
    let base = json!({"prompt": "a lighthouse at dusk", "n": 1, "size": "1024x1024"});
    let with = |extra: Value| {
        let mut body = base.clone();
        for (name, value) in extra.as_object().unwrap() {
            body[name] = value.clone();
        }
        body
    };

    // Without Kolbo's options, both providers have plans.
    let plain = estimate(&gateway, &base).await;
    assert_eq!(plain.status(), 200);
    let plain = candidates(&json(plain).await);
    for provider in ["kolbo", "koala"] {
        assert!(
            plain
                .iter()
                .any(|(p, eligible, _)| p == provider && *eligible),
            "{plain:?}"
        );
    }

    // A moodboard, or a visual DNA: Kolbo's plans only, KoalaImages' excluded with the
    // router's reason.
    for extra in [
        json!({"moodboard_id": WARM_FILM}),
        json!({"visual_dna_ids": [CAPTAIN_MIRA, AERO_SNEAKER]}),
    ] {
        let response = estimate(&gateway, &with(extra.clone())).await;
        assert_eq!(response.status(), 200, "{extra}");
        let ranked = candidates(&json(response).await);
        let eligible: Vec<_> = ranked.iter().filter(|(_, e, _)| *e).collect();
        assert!(!eligible.is_empty(), "{extra}: {ranked:?}");
        assert!(
            eligible.iter().all(|(p, _, _)| p == "kolbo"),
            "{extra}: {ranked:?}"
        );
        let koala: Vec<_> = ranked.iter().filter(|(p, _, _)| p == "koala").collect();
        assert!(!koala.is_empty(), "{extra}: {ranked:?}");
        for (_, _, reason) in koala {
            assert!(
                reason.contains("kolbo options") && reason.contains("only kolbo honours"),
                "{extra}: {reason}"
            );
        }
    }

    // Reference images: only the models that take as many.
    let response = estimate(
        &gateway,
        &with(json!({"reference_images": ["https://a.example/r1.png"]})),
    )
    .await;
    assert_eq!(response.status(), 200);
    let ranked = candidates(&json(response).await);
    assert!(ranked.iter().any(|(_, e, _)| *e), "{ranked:?}");
    assert!(
        ranked
            .iter()
            .any(|(_, e, why)| !*e && why.contains("takes at most 0 reference images, 1 given")),
        "{ranked:?}"
    );

    // The generation carries all three to Kolbo.
    let done = generate_in_background(
        &gateway,
        &with(json!({
            "moodboard_id": WARM_FILM,
            "visual_dna_ids": [CAPTAIN_MIRA],
            "reference_images": ["https://a.example/r1.png"],
        })),
    )
    .await;
    assert_eq!(done["status"], "succeeded", "{done}");
    let response = &done["response"];
    assert_eq!(response["imagegen"]["provider"], "kolbo", "{done}");
    assert!(response["data"][0]["url"].is_string(), "{done}");
    let sent: Vec<Value> = gateway
        .sim()
        .request_log()
        .entries()
        .into_iter()
        .filter(|e| e.route == imagegen::sim::Route::KolboGenerate)
        .filter_map(|e| e.body)
        .collect();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0]["moodboard_id"], WARM_FILM, "{}", sent[0]);
    assert_eq!(
        sent[0]["visual_dna_ids"],
        json!([CAPTAIN_MIRA]),
        "{}",
        sent[0]
    );
    assert_eq!(
        sent[0]["reference_images"],
        json!(["https://a.example/r1.png"]),
        "{}",
        sent[0]
    );
    // Its image is in the gallery.
    let detail = response["imagegen"]["images"][0]["detail"]
        .as_str()
        .unwrap();
    let (status, html) = page(&gateway, detail, None).await;
    assert_eq!(status, 200, "{html}");
    // Its re-run link brings the form back with the same options chosen.
    // (askama writes `&` as `&#38;`.)
    let rerun = links(&html, "/generate?")[0].replace("&#38;", "&");
    for needle in [
        "&reference_images=https%3A%2F%2Fa.example%2Fr1.png".to_owned(),
        format!("&moodboard_id={WARM_FILM}"),
        format!("&visual_dna_ids={CAPTAIN_MIRA}"),
    ] {
        assert!(rerun.contains(&needle), "{needle} in {rerun}");
    }
    let (status, form) = page(&gateway, &rerun, None).await;
    assert_eq!(status, 200, "{form}");
    for needle in [
        format!("<option value=\"{WARM_FILM}\" selected>Warm Film</option>"),
        format!("type=\"checkbox\" value=\"{CAPTAIN_MIRA}\" checked>"),
        "value=\"https://a.example/r1.png\"".to_owned(),
    ] {
        assert!(form.contains(&needle), "{needle} in {form}");
    }
    gateway.server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_kolbo_options_and_references_are_typed_400s_naming_the_field() {
    let gateway = start().await;
    for (extra, param, says) in [
        (
            json!({"visual_dna_ids": ["a", "b", "c", "d"]}),
            "visual_dna_ids",
            "at most 3",
        ),
        (
            json!({"visual_dna_ids": ["a", "a"]}),
            "visual_dna_ids",
            "twice",
        ),
        (json!({"visual_dna_ids": "a"}), "visual_dna_ids", "array"),
        (json!({"moodboard_id": " "}), "moodboard_id", "moodboard"),
        (json!({"moodboard_id": 7}), "moodboard_id", "string"),
        (
            json!({"reference_images": ["ftp://a.example/r.png"]}),
            "reference_images",
            "http",
        ),
        (
            json!({"reference_images": ["not a url"]}),
            "reference_images",
            "not a url",
        ),
    ] {
        let mut body = json!({"prompt": "a fox"});
        for (name, value) in extra.as_object().unwrap() {
            body[name] = value.clone();
        }
        for path in ["/v1/estimate", "/v1/generations"] {
            let response = gateway
                .http
                .post(gateway.url(path))
                .json(&body)
                .send()
                .await
                .unwrap();
            let (status, error, _) = common::error_of(response).await;
            assert_eq!(status, 400, "{path} {body}: {error}");
            assert_eq!(error["error"]["param"], param, "{path} {body}: {error}");
            let message = error["error"]["message"].as_str().unwrap();
            assert!(message.contains(says), "{path} {body}: {message}");
        }
    }
    // Nothing was sent.
    assert_eq!(
        gateway
            .sim()
            .request_log()
            .count(imagegen::sim::Route::KolboGenerate),
        0
    );
    gateway.server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_kolbos_lists_cannot_be_read_the_form_asks_for_ids_and_they_still_route() {
    use imagegen::sim::{Fault, FaultRule, Route};
    let gateway = start_with(
        sim()
            .with_fault(FaultRule::always(
                Route::KolboMoodboards,
                Fault::status(403),
            ))
            .with_fault(FaultRule::always(Route::KolboVisualDna, Fault::status(403))),
        |config| config,
    )
    .await;
    let (status, html) = page(
        &gateway,
        &format!("/generate?moodboard_id={WARM_FILM}&visual_dna_ids={CAPTAIN_MIRA}"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{html}");
    for needle in [
        "<label for=\"moodboard\">Moodboard id</label>",
        &format!(
            "<input id=\"moodboard\" name=\"moodboard_id\" type=\"text\" value=\"{WARM_FILM}\""
        ),
        "<span id=\"moodboard-note\" class=\"muted note\">The account's moodboards could not be listed (",
        "<label for=\"visual-dna\">Visual DNA ids (up to 3, separated by commas)</label>",
        &format!(
            "<input id=\"visual-dna\" name=\"visual_dna_ids\" type=\"text\" value=\"{CAPTAIN_MIRA}\""
        ),
        "The account's visual DNAs could not be listed (",
    ] {
        assert!(html.contains(needle), "{needle} in {html}");
    }
    assert!(!html.contains("<select id=\"moodboard\""), "{html}");
    for id in field_ids(&html) {
        assert!(
            html.contains(&format!("<label for=\"{id}\"")),
            "no label for #{id}"
        );
    }
    // The ids typed still make the plans Kolbo's only.
    let response = estimate(
        &gateway,
        &json!({"prompt": "a fox", "moodboard_id": WARM_FILM, "visual_dna_ids": [CAPTAIN_MIRA]}),
    )
    .await;
    assert_eq!(response.status(), 200);
    let ranked = candidates(&json(response).await);
    assert!(ranked.iter().any(|(_, e, _)| *e), "{ranked:?}");
    assert!(
        ranked.iter().all(|(p, e, _)| !*e || p == "kolbo"),
        "{ranked:?}"
    );
    gateway.server.shutdown().await.unwrap();
}
