//! Who may call what: staff sessions from the real auth service, devices paired through the
//! real devices service, and the order sources' keys.

use std::time::{Duration, Instant};

use access::Role;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{
    SOURCE_KEY, TestApp, error_code, error_field, json_body, order_id, order_json, product_ids,
    spawn_app,
};

/// The revocation bound: a role taken away or a device revoked is refused this soon.
const BOUND: Duration = Duration::from_secs(1);

/// One request of the matrix and the roles that may make it in their own pizzeria.
struct Case {
    method: Method,
    path: String,
    body: Option<Value>,
    allowed: &'static [Role],
}

const READERS: &[Role] = &[
    Role::ChainAdmin,
    Role::OfficeManager,
    Role::ShiftManager,
    Role::Cashier,
];
const MANAGERS: &[Role] = &[Role::ChainAdmin, Role::OfficeManager, Role::ShiftManager];
const KITCHEN: &[Role] = &[Role::ChainAdmin, Role::ShiftManager, Role::KitchenStaff];
const ADMIN: &[Role] = &[Role::ChainAdmin];
const EVERYONE: &[Role] = &Role::ALL;

/// Places a pizza order, a packed drink order and a third order in `pizzeria_id`, and returns
/// every manager endpoint of that pizzeria with who may call it.
async fn cases_in(app: &TestApp, pizzeria_id: Uuid) -> Vec<Case> {
    let place = async |items: &[(&str, &str, u32)]| {
        let response = app.post_order(&order_json(pizzeria_id, items)).await;
        assert_eq!(response.status(), StatusCode::CREATED);
        json_body(response).await
    };
    let pizza = place(&[("Pepperoni", "pizza", 1)]).await;
    let drink = place(&[("Cola", "drink", 1)]).await;
    let to_cancel = place(&[("Cola", "drink", 1)]).await;
    let p = format!("/api/v1/pizzerias/{pizzeria_id}");
    let response = app
        .send_as(
            Some(&app.token),
            Method::POST,
            &format!(
                "{p}/stations/packing/products/{}/tap",
                product_ids(&drink)[0]
            ),
            Some(&json!({})),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK, "the drink is packed");
    let case = |method: Method, path: String, body: Option<Value>, allowed| Case {
        method,
        path,
        body,
        allowed,
    };
    vec![
        case(Method::GET, format!("{p}/orders"), None, READERS),
        case(
            Method::GET,
            format!("{p}/orders/{}", order_id(&pizza)),
            None,
            READERS,
        ),
        case(
            Method::POST,
            format!("{p}/orders/{}/cancel", order_id(&to_cancel)),
            Some(json!({ "reason": "test" })),
            MANAGERS,
        ),
        case(
            Method::POST,
            format!("{p}/orders/{}/hand-over", order_id(&drink)),
            Some(json!({})),
            MANAGERS,
        ),
        case(
            Method::POST,
            format!(
                "{p}/orders/{}/products/{}/remake",
                order_id(&pizza),
                product_ids(&pizza)[0]
            ),
            Some(json!({ "reason": "burnt" })),
            MANAGERS,
        ),
        case(
            Method::POST,
            format!("{p}/orders/{}/rush", order_id(&pizza)),
            Some(json!({})),
            MANAGERS,
        ),
        case(Method::GET, format!("{p}/reports/stations"), None, MANAGERS),
        case(Method::GET, format!("{p}/reports/actors"), None, MANAGERS),
        case(
            Method::PUT,
            p.clone(),
            Some(json!({ "name": "Test pizzeria" })),
            ADMIN,
        ),
        case(
            Method::PUT,
            format!("{p}/routes/dessert"),
            Some(json!({ "stages": [{ "station": "packing", "target_seconds": 30 }] })),
            ADMIN,
        ),
        case(Method::GET, p.clone(), None, EVERYONE),
        case(Method::GET, format!("{p}/board"), None, READERS),
        case(
            Method::GET,
            format!("{p}/stations/oven/queue"),
            None,
            KITCHEN,
        ),
    ]
}

/// The same request, broken: a body with a field no endpoint has, or a query out of range.
fn broken(case: &Case) -> (String, Option<Value>) {
    match &case.body {
        Some(_) => (case.path.clone(), Some(json!({ "no_such_field": true }))),
        None => (format!("{}?limit=0&date=2025-02-30", case.path), None),
    }
}

#[tokio::test]
async fn a_caller_without_the_right_hears_403_before_any_word_about_the_request() {
    let app = spawn_app().await;
    let a = app.pizzeria_id;
    let cases = cases_in(&app, a).await;
    let admin = app.peers.staff(Role::ChainAdmin, a).await.token;
    let mut callers = Vec::new();
    for role in [Role::Cashier, Role::KitchenStaff] {
        callers.push((app.peers.staff(role, a).await.token, role, a));
    }
    let stranger = app
        .peers
        .staff(Role::OfficeManager, app.other_pizzeria_id)
        .await;
    callers.push((stranger.token, Role::OfficeManager, app.other_pizzeria_id));

    let mut wrong = Vec::new();
    for case in &cases {
        let (path, body) = broken(case);
        // The broken request is refused as broken when the caller may make it...
        let checked = app
            .send_as(Some(&admin), case.method.clone(), &path, body.as_ref())
            .await;
        let validates = checked.status().is_client_error();
        if validates {
            let problem = testkit::problem(checked).await;
            assert!(
                problem.field.is_some(),
                "{} {path}: {problem:?}",
                case.method
            );
        }
        // ...and as forbidden when not, whatever is wrong with it.
        for (token, role, home) in &callers {
            if *home == a && case.allowed.contains(role) {
                continue;
            }
            let response = app
                .send_as(Some(token), case.method.clone(), &path, body.as_ref())
                .await;
            if response.status() != StatusCode::FORBIDDEN {
                wrong.push(format!(
                    "{role} on {} {path}: {}",
                    case.method,
                    response.status()
                ));
            } else {
                assert_eq!(testkit::problem(response).await.code, "forbidden");
            }
        }
        // Without a valid token it is a 401, before anything else.
        let response = app
            .send_as(
                Some("kst_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
                case.method.clone(),
                &path,
                body.as_ref(),
            )
            .await;
        if response.status() != StatusCode::UNAUTHORIZED {
            wrong.push(format!(
                "a dead token on {} {path}: {}",
                case.method,
                response.status()
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[tokio::test]
async fn every_role_gets_exactly_its_endpoints_and_only_in_its_own_pizzeria() {
    let app = spawn_app().await;
    let (a, b) = (app.pizzeria_id, app.other_pizzeria_id);
    let mut cases = cases_in(&app, a).await;
    cases.extend(cases_in(&app, b).await);
    let target = |case: &Case| {
        if case.path.contains(&a.to_string()) {
            a
        } else {
            b
        }
    };

    // (token, role, home pizzeria); the chain admin's home does not matter.
    let mut callers = vec![(
        app.peers.staff(Role::ChainAdmin, a).await.token,
        Role::ChainAdmin,
        a,
    )];
    for home in [a, b] {
        for role in [
            Role::OfficeManager,
            Role::ShiftManager,
            Role::Cashier,
            Role::KitchenStaff,
        ] {
            callers.push((app.peers.staff(role, home).await.token, role, home));
        }
    }

    let mut wrong = Vec::new();
    for case in &cases {
        let body = case.body.as_ref();
        for token in [
            None,
            Some("kst_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
        ] {
            let response = app
                .send_as(token, case.method.clone(), &case.path, body)
                .await;
            if response.status() != StatusCode::UNAUTHORIZED {
                wrong.push(format!(
                    "{} {} without a session: {}",
                    case.method,
                    case.path,
                    response.status()
                ));
            }
        }
        for (token, role, home) in &callers {
            let own = role.is_chain_wide() || *home == target(case);
            let expected = if own && case.allowed.contains(role) {
                StatusCode::OK
            } else {
                StatusCode::FORBIDDEN
            };
            let response = app
                .send_as(Some(token), case.method.clone(), &case.path, body)
                .await;
            let status = response.status();
            if status != expected {
                wrong.push(format!(
                    "{role} of {} on {} {}: {status}, expected {expected}",
                    if *home == a { "A" } else { "B" },
                    case.method,
                    case.path
                ));
            } else if status == StatusCode::FORBIDDEN {
                // A refusal carries the problem and nothing of the pizzeria.
                let problem = testkit::problem(response).await;
                assert_eq!(problem.code, "forbidden", "{problem:?}");
                assert!(problem.field.is_none() && problem.rule.is_none());
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[tokio::test]
async fn health_and_metrics_need_no_session() {
    let app = spawn_app().await;
    for path in ["/health/live", "/metrics"] {
        let response = app.send_as(None, Method::GET, path, None).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
    }
}

/// Uses `token` on `path` a few times (so the tracker has it cached), runs `revoke`, and
/// fails unless `path` answers `refused` within the bound from the moment `revoke` returned.
async fn refused_within_bound_after(
    app: &TestApp,
    token: &str,
    path: &str,
    refused: StatusCode,
    revoke: impl Future<Output = ()>,
) {
    for _ in 0..3 {
        let response = app.send_as(Some(token), Method::GET, path, None).await;
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "{path} before the revocation"
        );
    }
    revoke.await;
    let since = Instant::now();
    loop {
        let status = app
            .send_as(Some(token), Method::GET, path, None)
            .await
            .status();
        if status == refused {
            return;
        }
        assert_eq!(status, StatusCode::OK, "{path} before it is refused");
        assert!(
            since.elapsed() < BOUND,
            "{path} still answered {status} {:?} after the revocation",
            since.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn a_role_taken_away_is_refused_on_the_next_request_within_a_second() {
    let app = spawn_app().await;
    app.wait_until_ready().await;
    let a = app.pizzeria_id;
    let manager = app.peers.staff(Role::ShiftManager, a).await;
    refused_within_bound_after(
        &app,
        &manager.token,
        &format!("/api/v1/pizzerias/{a}/orders"),
        StatusCode::FORBIDDEN,
        app.peers
            .revoke_role(manager.user_id, Role::ShiftManager, a),
    )
    .await;
}

#[tokio::test]
async fn a_station_tablet_works_its_own_station_and_a_tv_board_and_a_motivation_board_read_theirs()
{
    let app = spawn_app().await;
    let (a, b) = (app.pizzeria_id, app.other_pizzeria_id);
    let oven = app.peers.station_tablet(a, "oven").await;
    let board = app.peers.tv_board(a).await;
    let motivation = app
        .peers
        .pair_device(a, "motivation_board", None, "Kitchen motivation board")
        .await;
    let detail = app.place_order(&[("Pepperoni", "pizza", 1)]).await;
    let pizza = product_ids(&detail)[0];

    let cases = [
        (
            &oven,
            format!("/api/v1/pizzerias/{a}/stations/oven/queue"),
            StatusCode::OK,
        ),
        (
            &oven,
            format!("/api/v1/pizzerias/{a}/stations/dough/queue"),
            StatusCode::FORBIDDEN,
        ),
        (
            &oven,
            format!("/api/v1/pizzerias/{b}/stations/oven/queue"),
            StatusCode::FORBIDDEN,
        ),
        (
            &oven,
            format!("/api/v1/pizzerias/{a}/board"),
            StatusCode::FORBIDDEN,
        ),
        (
            &oven,
            format!("/api/v1/pizzerias/{a}/orders"),
            StatusCode::FORBIDDEN,
        ),
        (
            &oven,
            format!("/api/v1/pizzerias/{a}/orders/{}", order_id(&detail)),
            StatusCode::FORBIDDEN,
        ),
        (
            &oven,
            format!("/api/v1/pizzerias/{a}/reports/stations"),
            StatusCode::FORBIDDEN,
        ),
        (
            &board,
            format!("/api/v1/pizzerias/{a}/board"),
            StatusCode::OK,
        ),
        (
            &board,
            format!("/api/v1/pizzerias/{b}/board"),
            StatusCode::FORBIDDEN,
        ),
        (
            &board,
            format!("/api/v1/pizzerias/{a}/stations/oven/queue"),
            StatusCode::FORBIDDEN,
        ),
        (
            &board,
            format!("/api/v1/pizzerias/{a}/orders"),
            StatusCode::FORBIDDEN,
        ),
        (
            &board,
            format!("/api/v1/pizzerias/{a}/reports/actors"),
            StatusCode::FORBIDDEN,
        ),
        (
            &oven,
            format!("/api/v1/pizzerias/{a}/reports/actors"),
            StatusCode::FORBIDDEN,
        ),
        // The motivation board reads the actor report of its own pizzeria, and nothing else.
        (
            &motivation,
            format!("/api/v1/pizzerias/{a}/reports/actors"),
            StatusCode::OK,
        ),
        (
            &motivation,
            format!("/api/v1/pizzerias/{b}/reports/actors"),
            StatusCode::FORBIDDEN,
        ),
        (
            &motivation,
            format!("/api/v1/pizzerias/{a}/reports/stations"),
            StatusCode::FORBIDDEN,
        ),
        (
            &motivation,
            format!("/api/v1/pizzerias/{a}/board"),
            StatusCode::FORBIDDEN,
        ),
        (
            &motivation,
            format!("/api/v1/pizzerias/{a}/stations/oven/queue"),
            StatusCode::FORBIDDEN,
        ),
        (
            &motivation,
            format!("/api/v1/pizzerias/{a}/orders"),
            StatusCode::FORBIDDEN,
        ),
    ];
    for (device, path, expected) in cases {
        let response = app
            .send_as(Some(&device.token), Method::GET, &path, None)
            .await;
        assert_eq!(response.status(), expected, "{} on {path}", device.name);
    }
    let tap = |station: &str, pizzeria: Uuid| {
        format!("/api/v1/pizzerias/{pizzeria}/stations/{station}/products/{pizza}/tap")
    };
    for (path, expected) in [
        (tap("dough", a), StatusCode::FORBIDDEN),
        (tap("oven", b), StatusCode::FORBIDDEN),
        (
            format!("/api/v1/pizzerias/{a}/stations/dough/taps/1/undo"),
            StatusCode::FORBIDDEN,
        ),
        (
            format!("/api/v1/pizzerias/{a}/orders/{}/cancel", order_id(&detail)),
            StatusCode::FORBIDDEN,
        ),
    ] {
        let response = app
            .send_as(Some(&oven.token), Method::POST, &path, Some(&json!({})))
            .await;
        assert_eq!(response.status(), expected, "the oven tablet on {path}");
    }
    let response = app
        .send_as(
            Some(&board.token),
            Method::POST,
            &tap("oven", a),
            Some(&json!({})),
        )
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN, "the board taps");
    assert_eq!(
        app.order_detail(order_id(&detail)).await["products"][0]["station"],
        "dough",
        "no refused tap moved the pizza"
    );
}

#[tokio::test]
async fn who_did_it_is_the_authenticated_caller_or_someone_on_the_tablets_staff_list() {
    let app = spawn_app().await;
    let a = app.pizzeria_id;
    let dough = app.peers.station_tablet(a, "dough").await;
    let oven = app.peers.station_tablet(a, "oven").await;
    let cook = app.peers.staff(Role::KitchenStaff, a).await;
    let manager = app.peers.staff(Role::ShiftManager, a).await;
    let cook_elsewhere = app
        .peers
        .staff(Role::KitchenStaff, app.other_pizzeria_id)
        .await;
    let detail = app.place_order(&[("Pepperoni", "pizza", 1)]).await;
    let order = order_id(&detail);
    let pizza = product_ids(&detail)[0];
    let tap =
        |station: &str| format!("/api/v1/pizzerias/{a}/stations/{station}/products/{pizza}/tap");

    let response = app
        .send_as(
            Some(&cook_elsewhere.token),
            Method::POST,
            &tap("dough"),
            None,
        )
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);

    // A body cannot make a signed-in cook, or a tablet, record somebody else.
    let refused = [
        (&cook.token, "dough", json!({ "actor": "Pavel" }), "actor"),
        (
            &cook.token,
            "dough",
            json!({ "actor_id": manager.user_id }),
            "actor_id",
        ),
        (&dough.token, "dough", json!({ "actor": "Pavel" }), "actor"),
        // Not kitchen staff, or kitchen staff of another pizzeria: not on the tablet's list.
        (
            &dough.token,
            "dough",
            json!({ "actor_id": manager.user_id }),
            "actor_id",
        ),
        (
            &dough.token,
            "dough",
            json!({ "actor_id": cook_elsewhere.user_id }),
            "actor_id",
        ),
        (
            &dough.token,
            "dough",
            json!({ "actor": manager.display_name }),
            "actor",
        ),
    ];
    for (token, station, body, field) in refused {
        let response = app
            .send_as(Some(token), Method::POST, &tap(station), Some(&body))
            .await;
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}"
        );
        assert_eq!(error_field(response).await, field, "{body}");
    }

    let by_tablet = app
        .send_as(Some(&dough.token), Method::POST, &tap("dough"), None)
        .await;
    assert_eq!(by_tablet.status(), StatusCode::OK);
    let by_tablet = json_body(by_tablet).await;
    assert_eq!(by_tablet["actor"], "dough tablet");
    assert!(by_tablet["actor_user_id"].is_null());
    assert_eq!(
        by_tablet["principal"],
        format!("device:{}", dough.device_id)
    );
    let by_cook = app
        .send_as(Some(&cook.token), Method::POST, &tap("topping"), None)
        .await;
    assert_eq!(by_cook.status(), StatusCode::OK);
    let by_cook = json_body(by_cook).await;
    assert_eq!(by_cook["actor"], cook.display_name.as_str());
    assert_eq!(by_cook["principal"], format!("user:{}", cook.user_id));
    // The cook checked in at the oven tablet, by id or by their name on the list.
    let checked_in = app
        .send_as(
            Some(&oven.token),
            Method::POST,
            &tap("oven"),
            Some(&json!({ "actor_id": cook.user_id })),
        )
        .await;
    assert_eq!(checked_in.status(), StatusCode::OK);
    let checked_in = json_body(checked_in).await;
    assert_eq!(checked_in["actor"], cook.display_name.as_str());
    assert_eq!(checked_in["actor_user_id"], cook.user_id.to_string());
    assert_eq!(
        checked_in["principal"],
        format!("device:{}", oven.device_id)
    );

    // Undo by the cook at the tablet, by name this time.
    let undo = format!(
        "/api/v1/pizzerias/{a}/stations/oven/taps/{}/undo",
        checked_in["tap_id"]
    );
    let response = app
        .send_as(
            Some(&oven.token),
            Method::POST,
            &undo,
            Some(&json!({ "actor": cook.display_name })),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    // A manager's actions are the manager's, whatever the body says.
    let remake = format!("/api/v1/pizzerias/{a}/orders/{order}/products/{pizza}/remake");
    let response = app
        .send_as(
            Some(&manager.token),
            Method::POST,
            &remake,
            Some(&json!({ "actor": "Pavel", "reason": "burnt" })),
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error_field(response).await, "actor");
    let response = app
        .send_as(
            Some(&manager.token),
            Method::POST,
            &remake,
            Some(&json!({ "reason": "burnt" })),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let cancel = format!("/api/v1/pizzerias/{a}/orders/{order}/cancel");
    let response = app
        .send_as(Some(&manager.token), Method::POST, &cancel, None)
        .await;
    assert_eq!(response.status(), StatusCode::OK);

    let detail = app.order_detail(order).await;
    let who: Vec<(String, String, Value)> = detail["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| !t["actor"].is_null())
        .map(|t| {
            (
                t["kind"].as_str().unwrap().to_owned(),
                t["actor"].as_str().unwrap().to_owned(),
                t["principal"].clone(),
            )
        })
        .collect();
    let (tablet, oven_tablet, cook_user, manager_user) = (
        json!(format!("device:{}", dough.device_id)),
        json!(format!("device:{}", oven.device_id)),
        json!(format!("user:{}", cook.user_id)),
        json!(format!("user:{}", manager.user_id)),
    );
    let (cook_name, manager_name) = (cook.display_name.clone(), manager.display_name.clone());
    assert_eq!(
        who,
        [
            (
                "ProductStageCompleted".into(),
                "dough tablet".into(),
                tablet
            ),
            ("ProductStageCompleted".into(), cook_name.clone(), cook_user),
            (
                "ProductStageCompleted".into(),
                cook_name.clone(),
                oven_tablet.clone()
            ),
            ("ProductStageUndone".into(), cook_name, oven_tablet),
            (
                "ProductRemakeRequested".into(),
                manager_name.clone(),
                manager_user.clone()
            ),
            ("OrderCancelled".into(), manager_name, manager_user),
        ]
    );
}

#[tokio::test]
async fn a_revoked_device_is_refused_on_its_next_request_within_a_second() {
    let app = spawn_app().await;
    app.wait_until_ready().await;
    let a = app.pizzeria_id;
    let oven = app.peers.station_tablet(a, "oven").await;
    refused_within_bound_after(
        &app,
        &oven.token,
        &format!("/api/v1/pizzerias/{a}/stations/oven/queue"),
        StatusCode::UNAUTHORIZED,
        app.peers.revoke_device(a, oven.device_id),
    )
    .await;
}

#[tokio::test]
async fn http_intake_needs_an_order_source_key() {
    let app = spawn_app().await;
    let order = order_json(app.pizzeria_id, &[("Pepperoni", "pizza", 1)]);
    let staff_session = app.token.clone();
    for key in [None, Some("not-the-key"), Some(staff_session.as_str())] {
        let response = app.post_order_with(key, &order).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{key:?}");
        assert_eq!(error_code(response).await, "unauthorized");
    }
    let stored: i64 = sqlx::query_scalar("select count(*) from orders")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(stored, 0, "no refused order was stored");

    let response = app.post_order_with(Some(SOURCE_KEY), &order).await;
    assert_eq!(response.status(), StatusCode::CREATED);
}
