//! What the outside review asked of the web: metrics off the public listener, HSTS over TLS,
//! the browser's real address forwarded from behind a TLS proxy.

use reqwest::StatusCode;

use crate::helpers::{CSRF, spawn_auth, spawn_web};

#[tokio::test]
async fn metrics_are_served_only_on_the_ops_listener() {
    let app = spawn_web(|_| {}).await;
    let public = app.get("/metrics").await;
    assert_eq!(public.status(), StatusCode::NOT_FOUND);
    let ops = app
        .client
        .get(format!("{}/metrics", app.ops_address))
        .send()
        .await
        .expect("the ops listener answers");
    assert_eq!(ops.status(), StatusCode::OK);
    assert!(ops.text().await.expect("body").contains("http_requests"));
    // Health stays where a load balancer looks for it.
    assert_eq!(app.get("/health/live").await.status(), StatusCode::OK);
}

async fn hsts_of(app: &crate::helpers::TestApp, proto: Option<&str>) -> Option<String> {
    let mut request = app.client.get(app.url("/login"));
    if let Some(proto) = proto {
        request = request.header("x-forwarded-proto", proto);
    }
    let response = request.send().await.expect("answer");
    assert_eq!(response.status(), StatusCode::OK);
    response
        .headers()
        .get("strict-transport-security")
        .map(|v| v.to_str().expect("text").to_owned())
}

#[tokio::test]
async fn hsts_is_sent_when_a_trusted_tls_proxy_says_https_and_only_then() {
    let behind_proxy = spawn_web(|s| {
        s.network.trusted_proxies = "127.0.0.1".parse().expect("an address");
        s.network.hsts_max_age_seconds = 600;
    })
    .await;
    assert_eq!(
        hsts_of(&behind_proxy, Some("https")).await.as_deref(),
        Some("max-age=600")
    );
    assert_eq!(hsts_of(&behind_proxy, Some("http")).await, None);
    assert_eq!(hsts_of(&behind_proxy, None).await, None);
    // Without a trusted proxy, anyone could send the header: it is ignored.
    let direct = spawn_web(|_| {}).await;
    assert_eq!(hsts_of(&direct, Some("https")).await, None);
    let https_origin =
        spawn_web(|s| s.screens.public_origin = "https://kitchen.example".into()).await;
    assert!(hsts_of(&https_origin, None).await.is_some());
    let off = spawn_web(|s| {
        s.screens.public_origin = "https://kitchen.example".into();
        s.network.hsts_max_age_seconds = 0;
    })
    .await;
    assert_eq!(hsts_of(&off, None).await, None);
}

/// Behind a TLS proxy the web's peer is the proxy; it must forward the browser, not the proxy,
/// or every user shares one sign-in budget. Whatever the browser wrote into the header itself
/// (left of the proxy's entry) is not believed.
#[tokio::test]
async fn the_browser_behind_a_trusted_proxy_is_who_auth_sees() {
    let auth = spawn_auth(|s| {
        s.network.trusted_proxies = "127.0.0.1".parse().expect("an address");
    })
    .await;
    let auth_url = auth.url.clone();
    let app = spawn_web(|s| {
        s.upstream.auth_url = auth_url.clone();
        s.access.auth_url = auth_url.clone();
        s.network.trusted_proxies = "127.0.0.1".parse().expect("an address");
    })
    .await;
    let response = app
        .client
        .post(app.url("/login"))
        .header("origin", &app.address)
        .header("cookie", format!("kitchen_csrf={CSRF}"))
        // The browser claims 192.0.2.66; the TLS proxy appends what it saw, 203.0.113.45.
        .header("x-forwarded-for", "192.0.2.66, 203.0.113.45")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(
            serde_urlencoded::to_string([
                ("csrf", CSRF),
                ("login", "web.admin"),
                ("password", "not-the-password"),
            ])
            .expect("a form"),
        )
        .send()
        .await
        .expect("answer");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let ips: Vec<Option<String>> =
        sqlx::query_scalar("select ip from audit_log where action = 'login_failed'")
            .fetch_all(&auth.db.pool)
            .await
            .expect("audit rows");
    assert_eq!(ips, vec![Some("203.0.113.45".to_owned())]);
}

#[tokio::test]
async fn an_oversized_form_is_a_413_not_an_expired_form() {
    let app = spawn_web(|_| {}).await;
    let long = "x".repeat(64 * 1024);
    let response = app
        .post_form("/login", CSRF, &[("login", "anna"), ("password", &long)])
        .await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(
        !response
            .text()
            .await
            .expect("body")
            .contains("This form has expired")
    );
}
