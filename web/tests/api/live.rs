//! Live-update streams (`/events`) are kept honest while open (issue 12, item 8): a revoked
//! session's stream ends, and each session may hold only so many.

use std::time::Duration;

use reqwest::{Response, StatusCode};

use crate::helpers::{TestApp, spawn_auth, spawn_web};

/// Patience for what the bus and the server do by themselves; a guard, not a goal.
const PATIENCE: Duration = Duration::from_secs(30);

async fn sign_in(auth_url: &str) -> String {
    let response = reqwest::Client::new()
        .post(format!("{auth_url}/api/v1/sessions"))
        .json(&serde_json::json!({ "login": "web.admin", "password": "web-admin-password-1" }))
        .send()
        .await
        .expect("auth answers");
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: serde_json::Value = response.json().await.expect("a JSON body");
    body["token"].as_str().expect("a token").to_owned()
}

async fn open_events(app: &TestApp, token: &str, pizzeria: uuid::Uuid) -> Response {
    app.client
        .get(app.url(&format!("/events?pizzeria={pizzeria}")))
        .header("cookie", format!("kitchen_staff_session={token}"))
        .send()
        .await
        .expect("the web answers")
}

/// Opens a stream and reads its greeting, so it is surely open on the server.
async fn open_stream(app: &TestApp, token: &str, pizzeria: uuid::Uuid) -> Response {
    let mut response = open_events(app, token, pizzeria).await;
    assert_eq!(response.status(), StatusCode::OK);
    let hello = response
        .chunk()
        .await
        .expect("a greeting")
        .expect("a chunk");
    assert!(String::from_utf8_lossy(&hello).contains("connected"));
    response
}

/// Reads the stream to its end.
async fn ends(mut stream: Response) {
    tokio::time::timeout(PATIENCE, async {
        while let Some(chunk) = stream.chunk().await.expect("the stream reads") {
            assert!(
                !String::from_utf8_lossy(&chunk).contains("data:"),
                "nothing happened in this pizzeria"
            );
        }
    })
    .await
    .expect("the stream ends");
}

#[tokio::test]
async fn a_revoked_sessions_stream_ends_and_each_session_has_a_cap() {
    let bus = testkit::test_bus();
    let auth_bus = bus.clone();
    let auth = spawn_auth(move |s| s.bus = auth_bus).await;
    let auth_url = auth.url.clone();
    let app = spawn_web(|s| {
        s.bus = bus;
        s.upstream.auth_url = auth_url.clone();
        s.access.auth_url = auth_url.clone();
        s.screens.max_streams_per_viewer = 2;
    })
    .await;
    testkit::eventually("the web subscribed", PATIENCE, || async {
        (app.get("/health/ready").await.status() == StatusCode::OK).then_some(())
    })
    .await;
    let pizzeria = uuid::Uuid::now_v7();
    let token = sign_in(&auth.url).await;
    let other = sign_in(&auth.url).await;

    let first = open_stream(&app, &token, pizzeria).await;
    let second = open_stream(&app, &token, pizzeria).await;
    let refused = open_events(&app, &token, pizzeria).await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    // The cap is per session: the same user's other session has its own.
    let of_other = open_stream(&app, &other, pizzeria).await;
    // A stream the browser closed gives its place back.
    drop(second);
    let third = testkit::eventually("a freed place", PATIENCE, || async {
        let response = open_events(&app, &token, pizzeria).await;
        (response.status() == StatusCode::OK).then_some(response)
    })
    .await;

    let response = reqwest::Client::new()
        .delete(format!("{}/api/v1/sessions/current", auth.url))
        .bearer_auth(&token)
        .send()
        .await
        .expect("auth answers");
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    ends(first).await;
    ends(third).await;
    // A new stream of the revoked session is refused; the other session goes on.
    // (The web's token cache hears of the revocation on a queue of its own, so it may lag the
    // stream's end by a moment.)
    testkit::eventually("the revoked session refused", PATIENCE, || async {
        let status = open_events(&app, &token, pizzeria).await.status();
        (status == StatusCode::UNAUTHORIZED).then_some(())
    })
    .await;
    drop(of_other);
    open_stream(&app, &other, pizzeria).await;
}

#[tokio::test]
async fn a_revoked_tablets_stream_ends() {
    let bus = testkit::test_bus();
    let peers = system_tests::AccessPeers::start(&bus).await;
    let pizzeria = uuid::Uuid::now_v7();
    peers.register_pizzerias(&[pizzeria]).await;
    let tablet = peers.station_tablet(pizzeria, "dough").await;
    let other = peers.station_tablet(pizzeria, "oven").await;
    let (access, device_access) = (peers.access.clone(), peers.device_access.clone());
    let app = spawn_web(|s| {
        s.upstream.auth_url = peers.auth_url.clone();
        s.upstream.devices_url = peers.devices_url.clone();
        s.access = access;
        s.device_access = device_access;
        s.bus = bus;
    })
    .await;
    testkit::eventually("the web subscribed", PATIENCE, || async {
        (app.get("/health/ready").await.status() == StatusCode::OK).then_some(())
    })
    .await;
    let open = |token: String| {
        let request = app
            .client
            .get(app.url("/events"))
            .header("cookie", format!("kitchen_device={token}"));
        async move { request.send().await.expect("the web answers") }
    };
    let mut stream = open(tablet.token.clone()).await;
    assert_eq!(stream.status(), StatusCode::OK);
    stream.chunk().await.expect("a greeting").expect("a chunk");
    let mut untouched = open(other.token.clone()).await;
    assert_eq!(untouched.status(), StatusCode::OK);
    untouched
        .chunk()
        .await
        .expect("a greeting")
        .expect("a chunk");

    peers.revoke_device(pizzeria, tablet.device_id).await;
    ends(stream).await;
    testkit::eventually("the revoked tablet refused", PATIENCE, || async {
        let status = open(tablet.token.clone()).await.status();
        (status == StatusCode::UNAUTHORIZED).then_some(())
    })
    .await;
    // The other tablet of the pizzeria still has its stream.
    drop(untouched);
    assert_eq!(open(other.token.clone()).await.status(), StatusCode::OK);
}
