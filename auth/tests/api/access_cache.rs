//! The shared client (`crates/access`) against a real auth app and bus: its cache is dropped by
//! auth's events within the 1 s revocation bound, and bypassed while its subscription is down.

use std::time::{Duration, Instant};

use access::{AccessSettings, CacheInvalidation, Permission, StaffVerifier};
use secrecy::{ExposeSecret, SecretString};
use service_kit::{config::BusSettings, shutdown::Shutdown};

use crate::helpers::*;

/// The revocation bound the issue sets.
const BOUND: Duration = Duration::from_secs(1);

fn verifier(app: &TestApp) -> StaffVerifier {
    StaffVerifier::new(&AccessSettings {
        auth_url: app.address.clone(),
        introspection_key: SecretString::from(
            app.settings.introspection.key.expose_secret().to_owned(),
        ),
        // Far longer than the bound: only events can make the cache let go in time.
        cache_ttl_ms: 600_000,
        request_timeout_ms: 2_000,
        cache_capacity: 1_000,
    })
    .expect("a verifier")
}

/// A verifier whose invalidation task runs against `bus`; stopped when the guard drops.
struct Subscribed {
    verifier: StaffVerifier,
    shutdown: Shutdown,
}

impl Drop for Subscribed {
    fn drop(&mut self) {
        self.shutdown.trigger();
    }
}

fn subscribe(app: &TestApp, bus: BusSettings) -> Subscribed {
    let verifier = verifier(app);
    let shutdown = Shutdown::new();
    tokio::spawn(CacheInvalidation::new(verifier.clone(), bus, "test", shutdown.clone()).run());
    Subscribed { verifier, shutdown }
}

async fn wait_for_lease(verifier: &StaffVerifier) {
    testkit::eventually(
        "the access cache to subscribe",
        Duration::from_secs(10),
        || async { verifier.cache_in_use().then_some(()) },
    )
    .await;
}

/// Polls `verify` until `done` holds for its answer; returns how long that took.
async fn time_until(
    verifier: &StaffVerifier,
    token: &str,
    done: impl Fn(Option<&access::StaffPrincipal>) -> bool,
) -> Duration {
    let started = Instant::now();
    loop {
        let answer = verifier.verify(token).await.expect("auth answers");
        if done(answer.as_deref()) {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the cache never let go"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn a_revoked_session_stops_working_within_a_second() {
    let app = spawn_app().await;
    let (_, token) = app.staff_session("ann", "kitchen_staff").await;
    let sub = subscribe(&app, app.bus.clone());
    wait_for_lease(&sub.verifier).await;

    let principal = sub
        .verifier
        .verify(&token)
        .await
        .expect("verify")
        .expect("a principal");
    assert!(principal.can(app.pizzeria_id, Permission::KitchenWork));
    assert_eq!(sub.verifier.cached_entries(), 1);

    let response = app.delete_with(&token, "/api/v1/sessions/current").await;
    assert_eq!(response.status(), reqwest::StatusCode::NO_CONTENT);
    let took = time_until(&sub.verifier, &token, |p| p.is_none()).await;
    eprintln!("revoked session evicted after {took:?}");
    assert!(took < BOUND, "took {took:?}");
}

#[tokio::test]
async fn a_revoked_role_stops_working_within_a_second() {
    let app = spawn_app().await;
    let (user, token) = app.staff_session("bob", "shift_manager").await;
    let sub = subscribe(&app, app.bus.clone());
    wait_for_lease(&sub.verifier).await;
    let p = app.pizzeria_id;
    let principal = sub
        .verifier
        .verify(&token)
        .await
        .expect("verify")
        .expect("a principal");
    assert!(principal.can(p, Permission::OrdersManage));

    app.revoke(user, "shift_manager").await;
    let took = time_until(&sub.verifier, &token, |principal| {
        principal.is_some_and(|principal| !principal.can(p, Permission::OrdersManage))
    })
    .await;
    eprintln!("revoked role evicted after {took:?}");
    assert!(took < BOUND, "took {took:?}");

    app.post_with(
        &app.admin_token,
        &format!("/api/v1/users/{user}/deactivate"),
        &serde_json::json!({}),
    )
    .await;
    let took = time_until(&sub.verifier, &token, |principal| principal.is_none()).await;
    assert!(took < BOUND, "deactivation took {took:?}");
}

#[tokio::test]
async fn without_a_subscription_the_cache_is_bypassed() {
    let app = spawn_app().await;
    let (_, token) = app.staff_session("cleo", "cashier").await;
    // A broker that is not there: the subscription never connects.
    let dead_bus = BusSettings {
        url: SecretString::from("amqp://guest:guest@127.0.0.1:1/%2f".to_owned()),
        ..app.bus.clone()
    };
    let sub = subscribe(&app, dead_bus);
    assert!(sub.verifier.verify(&token).await.expect("verify").is_some());
    assert!(!sub.verifier.cache_in_use());
    assert_eq!(sub.verifier.cached_entries(), 0);

    app.delete_with(&token, "/api/v1/sessions/current").await;
    // No event can arrive, yet the very next check sees the revocation.
    assert!(sub.verifier.verify(&token).await.expect("verify").is_none());
}

#[tokio::test]
async fn when_the_subscription_stops_the_cache_is_dropped_and_bypassed() {
    let app = spawn_app().await;
    let (_, token) = app.staff_session("dan", "cashier").await;
    let sub = subscribe(&app, app.bus.clone());
    wait_for_lease(&sub.verifier).await;
    assert!(sub.verifier.verify(&token).await.expect("verify").is_some());
    assert_eq!(sub.verifier.cached_entries(), 1);

    sub.shutdown.trigger();
    testkit::eventually("the lease to end", Duration::from_secs(2), || async {
        (!sub.verifier.cache_in_use()).then_some(())
    })
    .await;
    assert_eq!(sub.verifier.cached_entries(), 0);
    // Revoke behind the cache's back (no event will reach it): still seen at once.
    sqlx::query("update sessions set revoked_at = now()")
        .execute(&app.db.pool)
        .await
        .expect("revoke in the database");
    assert!(sub.verifier.verify(&token).await.expect("verify").is_none());
}

#[tokio::test]
async fn the_staff_extractor_gives_401_and_403() {
    use actix_web::{App, HttpResponse, test, web};

    let app = spawn_app().await;
    let (_, token) = app.staff_session("eve", "kitchen_staff").await;
    let pizzeria = app.pizzeria_id;
    let service = test::init_service(
        App::new()
            .app_data(web::Data::new(verifier(&app)))
            .route(
                "/manage",
                web::post().to(move |staff: access::Staff| async move {
                    staff.require(pizzeria, Permission::OrdersManage)?;
                    Ok::<_, service_kit::http::ClientError>(HttpResponse::Ok().finish())
                }),
            )
            .route(
                "/work",
                web::post().to(move |staff: access::Staff| async move {
                    staff.require(pizzeria, Permission::KitchenWork)?;
                    Ok::<_, service_kit::http::ClientError>(HttpResponse::Ok().finish())
                }),
            ),
    )
    .await;
    let call = |path: &str, token: Option<&str>| {
        let mut req = test::TestRequest::post().uri(path);
        if let Some(token) = token {
            req = req.insert_header(("authorization", format!("Bearer {token}")));
        }
        req.to_request()
    };
    let status = |r: actix_web::dev::ServiceResponse| r.status().as_u16();
    assert_eq!(
        status(test::call_service(&service, call("/work", None)).await),
        401
    );
    assert_eq!(
        status(
            test::call_service(
                &service,
                call("/work", Some("kst_nonsense-nonsense-nonsense"))
            )
            .await
        ),
        401
    );
    assert_eq!(
        status(test::call_service(&service, call("/work", Some(&token))).await),
        200
    );
    let forbidden = test::call_service(&service, call("/manage", Some(&token))).await;
    assert_eq!(status(forbidden), 403);
}
