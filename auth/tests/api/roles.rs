use reqwest::StatusCode;
use serde_json::json;
use uuid::Uuid;

use crate::helpers::*;

fn can(answer: &serde_json::Value, pizzeria_id: Uuid, permission: &str) -> bool {
    answer["session"]["chain_admin"] == true
        || answer["session"]["grants"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|g| {
                g["pizzeria_id"] == pizzeria_id.to_string()
                    && g["permissions"]
                        .as_array()
                        .is_some_and(|p| p.contains(&permission.into()))
            })
}

#[tokio::test]
async fn role_grants_and_revocations_show_at_the_next_introspection() {
    let app = spawn_app().await;
    let (user, token) = app.staff_session("kira", "cashier").await;
    let p = app.pizzeria_id;
    assert!(!can(&app.introspect(&token).await, p, "kitchen.work"));

    let response = app.grant(user, "kitchen_staff").await;
    assert_eq!(response.status(), StatusCode::OK);
    let roles = json_body(response).await["roles"].clone();
    assert_eq!(roles.as_array().expect("roles").len(), 2);
    assert!(can(&app.introspect(&token).await, p, "kitchen.work"));

    let response = app.revoke(user, "kitchen_staff").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(!can(&app.introspect(&token).await, p, "kitchen.work"));
    assert!(can(&app.introspect(&token).await, p, "orders.read"));
    assert!(!can(&app.introspect(&token).await, p, "orders.intake"));
    let actions = app.audit_actions(user).await;
    assert!(actions.contains(&"role_granted".to_owned()));
    assert!(actions.contains(&"role_revoked".to_owned()));
}

#[tokio::test]
async fn deactivation_ends_every_session_and_blocks_login() {
    let app = spawn_app().await;
    let (user, token) = app.staff_session("lev", "kitchen_staff").await;
    let response = app
        .post_with(
            &app.admin_token,
            &format!("/api/v1/users/{user}/deactivate"),
            &json!({}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(json_body(response).await["active"], false);
    assert_eq!(app.introspect(&token).await["active"], false);
    let response = app.login("lev", PASSWORD).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(error_code(response).await, "invalid_credentials");
}

#[tokio::test]
async fn an_office_manager_manages_their_pizzeria_only() {
    let app = spawn_app().await;
    let (_, manager) = app.staff_session("mila", "office_manager").await;
    let other = Uuid::now_v7();
    app.register_pizzeria(other).await;

    let create = |pizzeria: Uuid, role: &str, login: &str| {
        json!({
            "login": login, "display_name": "New", "password": PASSWORD,
            "roles": [{"role": role, "pizzeria_id": pizzeria}],
        })
    };
    let response = app
        .post_with(
            &manager,
            "/api/v1/users",
            &create(app.pizzeria_id, "kitchen_staff", "nina"),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let nina = uuid_of(&json_body(response).await["id"]);
    let response = app
        .post_with(
            &manager,
            "/api/v1/users",
            &create(other, "kitchen_staff", "oleg"),
        )
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let response = app
        .post_with(
            &manager,
            &format!("/api/v1/users/{nina}/roles"),
            &json!({"role": "chain_admin"}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let response = app
        .post_with(
            &manager,
            &format!("/api/v1/users/{nina}/deactivate"),
            &json!({}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn the_kitchen_staff_list_is_for_the_pizzerias_staff() {
    let app = spawn_app().await;
    let (_, kitchen) = app.staff_session("pavel", "kitchen_staff").await;
    app.create_staff("rita", "kitchen_staff").await;
    app.create_staff("sasha", "cashier").await;
    let path = format!(
        "/api/v1/pizzerias/{}/staff?role=kitchen_staff",
        app.pizzeria_id
    );
    let response = app.get_with(&kitchen, &path).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body = json_body(response).await;
    let names: Vec<&str> = body["staff"]
        .as_array()
        .expect("staff")
        .iter()
        .map(|s| s["display_name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, vec!["pavel (test)", "rita (test)"]);

    let outsider_pizzeria = Uuid::now_v7();
    let response = app
        .get_with(
            &kitchen,
            &format!("/api/v1/pizzerias/{outsider_pizzeria}/staff"),
        )
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let response = app
        .get_with(
            &kitchen,
            &format!("/api/v1/pizzerias/{}/staff?role=baker", app.pizzeria_id),
        )
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_field(response).await, "role");
}

#[tokio::test]
async fn the_older_post_spelling_of_a_revocation_still_revokes() {
    let app = spawn_app().await;
    let (user, token) = app.staff_session("pavel", "kitchen_staff").await;
    let p = app.pizzeria_id;
    assert!(can(&app.introspect(&token).await, p, "kitchen.work"));
    let response = app
        .post_with(
            &app.admin_token,
            &format!("/api/v1/users/{user}/roles/revoke"),
            &serde_json::json!({ "role": "kitchen_staff", "pizzeria_id": p }),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(!can(&app.introspect(&token).await, p, "kitchen.work"));
}

#[tokio::test]
async fn a_revocation_by_delete_names_what_is_wrong_with_it() {
    let app = spawn_app().await;
    let user = app.create_staff("rita", "kitchen_staff").await;
    let path = format!(
        "/api/v1/users/{user}/roles/baker?pizzeria_id={}",
        app.pizzeria_id
    );
    let response = app.delete_with(&app.admin_token, &path).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error_field(response).await, "role");
    let path = format!("/api/v1/users/{user}/roles/kitchen_staff?pizzeria_id=nope");
    let response = app.delete_with(&app.admin_token, &path).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_field(response).await, "pizzeria_id");
}

#[tokio::test]
async fn a_caller_who_manages_no_staff_hears_403_before_any_word_about_the_body() {
    let app = spawn_app().await;
    let (user, cashier) = app.staff_session("olga", "cashier").await;
    let broken = serde_json::json!({ "login": 42, "no_such_field": true });
    for (path, body) in [
        ("/api/v1/users".to_owned(), &broken),
        (format!("/api/v1/users/{user}/roles"), &broken),
        (format!("/api/v1/users/{user}/roles/revoke"), &broken),
    ] {
        let response = app.post_with(&cashier, &path, body).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{path}");
        assert_eq!(testkit::problem(response).await.code, "forbidden");
        // The same body from someone who may is refused for what it is.
        let response = app.post_with(&app.admin_token, &path, body).await;
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{path}"
        );
    }
    let path = format!("/api/v1/users/{user}/roles/baker?pizzeria_id=nope");
    let response = app.delete_with(&cashier, &path).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    for query in ["limit=0", "limit=lots", "no_such=1"] {
        let response = app
            .get_with(&cashier, &format!("/api/v1/audit?{query}"))
            .await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{query}");
    }
}

#[tokio::test]
async fn an_out_of_range_limit_is_a_422_as_in_every_service() {
    let app = spawn_app().await;
    for query in ["limit=0", "limit=1001"] {
        let response = app
            .get_with(&app.admin_token, &format!("/api/v1/audit?{query}"))
            .await;
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{query}"
        );
        assert_eq!(error_field(response).await, "limit");
    }
    let response = app
        .get_with(&app.admin_token, "/api/v1/audit?limit=lots")
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn introspection_without_the_key_and_a_stranger_s_staff_list_are_refused_before_the_input() {
    let app = spawn_app().await;
    let response = app
        .client
        .post(app.url("/internal/v1/introspect"))
        .json(&json!({ "no_such_field": true }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let stranger_pizzeria = Uuid::now_v7();
    let (_, cook) = app.staff_session("ivan", "kitchen_staff").await;
    let path = format!("/api/v1/pizzerias/{stranger_pizzeria}/staff?no_such=1");
    let response = app.get_with(&cook, &path).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    // Where the caller works, the same query is refused for what it is.
    let path = format!("/api/v1/pizzerias/{}/staff?no_such=1", app.pizzeria_id);
    let response = app.get_with(&cook, &path).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
}
