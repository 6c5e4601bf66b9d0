use reqwest::StatusCode;

use crate::helpers::{CSRF, spawn_auth, spawn_web};

#[tokio::test]
async fn a_manager_page_without_a_session_sends_to_sign_in_and_back() {
    let app = spawn_web(|_| {}).await;
    let p = uuid::Uuid::new_v4();
    let response = app
        .client
        .get(app.url(&format!("/p/{p}/orders?status=packed")))
        .send()
        .await
        .expect("answer");
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let location = response.headers()["location"].to_str().expect("text");
    assert!(location.starts_with("/login?next=%2Fp%2F"), "{location}");
}

#[tokio::test]
async fn a_device_screen_without_a_device_goes_to_the_login_code() {
    let app = spawn_web(|_| {}).await;
    let response = app
        .client
        .get(app.url("/station"))
        .send()
        .await
        .expect("answer");
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()["location"], "/device");
}

#[tokio::test]
async fn forms_without_the_csrf_token_or_from_another_site_are_refused() {
    let app = spawn_web(|_| {}).await;
    // No token at all.
    let response = app
        .client
        .post(app.url("/login"))
        .header("origin", &app.address)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(serde_urlencoded::to_string([("login", "a"), ("password", "b")]).expect("a form"))
        .send()
        .await
        .expect("answer");
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(
        response
            .text()
            .await
            .expect("body")
            .contains("This form has expired")
    );
    // A token that is not the cookie's.
    let response = app
        .client
        .post(app.url("/login"))
        .header("origin", &app.address)
        .header("cookie", format!("kitchen_csrf={CSRF}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(
            serde_urlencoded::to_string([
                ("csrf", "another-token-another-token-another-token"),
                ("login", "a"),
                ("password", "b"),
            ])
            .expect("a form"),
        )
        .send()
        .await
        .expect("answer");
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    // The right token, from another site.
    let response = app
        .client
        .post(app.url("/login"))
        .header("origin", "http://evil.example")
        .header("cookie", format!("kitchen_csrf={CSRF}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(
            serde_urlencoded::to_string([("csrf", CSRF), ("login", "a"), ("password", "b")])
                .expect("a form"),
        )
        .send()
        .await
        .expect("answer");
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn an_unreachable_service_and_an_unknown_page_get_friendly_pages() {
    let app = spawn_web(|_| {}).await;
    let response = app
        .post_form(
            "/login",
            CSRF,
            &[("login", "anna"), ("password", "secret-password")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body = response.text().await.expect("body");
    assert!(
        body.contains("We cannot reach the sign-in service"),
        "{body}"
    );
    assert!(body.contains("<link rel=\"stylesheet\""));

    let response = app
        .client
        .get(app.url("/device"))
        .send()
        .await
        .expect("answer");
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);

    let response = app
        .client
        .get(app.url("/no/such/page"))
        .send()
        .await
        .expect("answer");
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert!(response.text().await.expect("body").contains("Not found"));
}

#[tokio::test]
async fn signing_in_at_a_real_auth_keeps_the_session_in_a_strict_cookie() {
    let auth = spawn_auth(|_| {}).await;
    let auth_url = auth.url.clone();
    let app = spawn_web(|s| {
        s.upstream.auth_url = auth_url.clone();
        s.access.auth_url = auth_url.clone();
    })
    .await;
    let wrong = app
        .post_form(
            "/login",
            CSRF,
            &[("login", "web.admin"), ("password", "not-the-password")],
        )
        .await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert!(
        wrong
            .text()
            .await
            .expect("body")
            .contains("Wrong login or password")
    );

    let response = app
        .post_form(
            "/login",
            CSRF,
            &[
                ("login", "web.admin"),
                ("password", "web-admin-password-1"),
                ("next", "/activate"),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()["location"], "/activate");
    let cookies: Vec<String> = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().expect("text").to_owned())
        .collect();
    let session = cookies
        .iter()
        .find(|c| c.starts_with("kitchen_staff_session=kst_"))
        .expect("the session cookie");
    for flag in ["HttpOnly", "SameSite=Strict", "Secure"] {
        assert!(session.contains(flag), "{session} lacks {flag}");
    }
    // The start page knows who signed in.
    let token = session.split(';').next().expect("pair");
    let start = app
        .client
        .get(app.url("/"))
        .header("cookie", token)
        .send()
        .await
        .expect("answer");
    assert_eq!(start.status(), StatusCode::OK);
    assert!(start.text().await.expect("body").contains("Web Admin"));
}

#[tokio::test]
async fn ready_follows_the_live_updates_subscription_and_checks_no_database() {
    let app = spawn_web(|s| s.bus = testkit::test_bus()).await;
    assert_eq!(app.get("/health/live").await.status(), StatusCode::OK);
    // Metrics live on the ops listener (see hardening.rs).
    let metrics = app
        .client
        .get(format!("{}/metrics", app.ops_address))
        .send()
        .await
        .expect("answer");
    assert_eq!(metrics.status(), StatusCode::OK);
    let started = std::time::Instant::now();
    let body: serde_json::Value = loop {
        let response = app.get("/health/ready").await;
        if response.status() == StatusCode::OK {
            break response.json().await.expect("JSON");
        }
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "the web never subscribed to the tracker's events"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(
        body,
        serde_json::json!({ "status": "ready", "checks": { "live_updates": true } })
    );

    // Without a broker it says which check fails.
    let app =
        spawn_web(|s| s.bus.url = "amqp://guest:guest@127.0.0.1:9/%2f".to_owned().into()).await;
    let response = app.get("/health/ready").await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: serde_json::Value = response.json().await.expect("JSON");
    assert_eq!(body["checks"], serde_json::json!({ "live_updates": false }));
}

#[tokio::test]
async fn the_favicon_is_served() {
    let app = spawn_web(|_| {}).await;
    let response = app.get("/favicon.ico").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "image/svg+xml");
    assert!(response.text().await.expect("body").starts_with("<svg"));
}

#[tokio::test]
async fn a_browser_asking_for_russian_gets_pages_and_error_pages_in_russian() {
    let app = spawn_web(|_| {}).await;
    let page = |path: &'static str, language: &'static str| {
        let request = app
            .client
            .get(app.url(path))
            .header("accept-language", language);
        async move {
            let response = request.send().await.expect("answer");
            (response.status(), response.text().await.expect("body"))
        }
    };
    let (_, body) = page("/login", "ru-RU,ru;q=0.9,en;q=0.5").await;
    assert!(body.contains("<html lang=\"ru\">"), "{body}");
    assert!(body.contains("<title>Вход · Кухня</title>"), "{body}");
    assert!(body.contains("Кухня: вход"));
    // The page script's strings come along, in the same language.
    assert!(body.contains("Нет связи: ничего не отправлено"), "{body}");

    let (status, body) = page("/no/such/page", "ru").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body.contains("<h1>Не найдено</h1>"), "{body}");

    // A language we do not speak: English.
    let (_, body) = page("/login", "de-DE").await;
    assert!(body.contains("<html lang=\"en\">") && body.contains("Kitchen: sign in"));
}
