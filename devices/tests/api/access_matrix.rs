//! `access::Caller` on a tiny actix app, as the tracker will use it: station tablets, TV boards
//! and staff, across pizzerias and stations.

use access::Caller;
use actix_web::{App, HttpResponse, dev::ServiceResponse, test, web};
use service_kit::http::ClientError;
use uuid::Uuid;

use crate::helpers::*;

async fn station(
    caller: Caller,
    path: web::Path<(Uuid, String)>,
) -> Result<HttpResponse, ClientError> {
    let (pizzeria_id, station) = path.into_inner();
    caller.require_station(pizzeria_id, &station)?;
    Ok(HttpResponse::Ok().body(caller.display_name().to_owned()))
}

async fn board(caller: Caller, path: web::Path<Uuid>) -> Result<HttpResponse, ClientError> {
    caller.require_board(path.into_inner())?;
    Ok(HttpResponse::Ok().finish())
}

#[tokio::test]
async fn require_station_and_require_board_across_pizzerias_and_stations() {
    let app = spawn_app().await;
    let oven = app.pair(app.tablet("oven")).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let tv = app.pair(app.board()).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let motivation = app
        .pair(serde_json::json!({
            "pizzeria_id": app.pizzeria_id, "kind": "motivation_board", "name": "Pace"
        }))
        .await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let revoked = app.pair(app.tablet("oven")).await;
    app.revoke_device(&app.office_token, revoked["device_id"].as_str().unwrap())
        .await;
    let revoked = revoked["access_token"].as_str().unwrap().to_owned();
    let cook = app.staff_session("cook", "kitchen_staff").await;
    let cashier = app.staff_session("till", "cashier").await;

    let service = test::init_service(
        App::new()
            .app_data(web::Data::new(app.staff_verifier()))
            .app_data(web::Data::new(app.device_verifier()))
            .route(
                "/p/{pizzeria_id}/stations/{station}",
                web::get().to(station),
            )
            .route("/p/{pizzeria_id}/board", web::get().to(board)),
    )
    .await;
    let here = app.pizzeria_id;
    let there = Uuid::now_v7();
    let status = |r: ServiceResponse| r.status().as_u16();

    let matrix: Vec<(&str, Option<&str>, String, u16)> = vec![
        ("nobody", None, format!("/p/{here}/stations/oven"), 401),
        (
            "a made-up device",
            Some("kdt_made-up-made-up-made-up"),
            format!("/p/{here}/stations/oven"),
            401,
        ),
        (
            "a made-up session",
            Some("kst_made-up-made-up-made-up"),
            format!("/p/{here}/stations/oven"),
            401,
        ),
        (
            "a revoked tablet",
            Some(&revoked),
            format!("/p/{here}/stations/oven"),
            401,
        ),
        (
            "the oven tablet",
            Some(&oven),
            format!("/p/{here}/stations/oven"),
            200,
        ),
        (
            "the oven tablet",
            Some(&oven),
            format!("/p/{here}/stations/dough"),
            403,
        ),
        (
            "the oven tablet",
            Some(&oven),
            format!("/p/{there}/stations/oven"),
            403,
        ),
        (
            "the oven tablet",
            Some(&oven),
            format!("/p/{here}/board"),
            403,
        ),
        ("the TV", Some(&tv), format!("/p/{here}/board"), 200),
        ("the TV", Some(&tv), format!("/p/{there}/board"), 403),
        ("the TV", Some(&tv), format!("/p/{here}/stations/oven"), 403),
        (
            "the motivation board",
            Some(&motivation),
            format!("/p/{here}/board"),
            403,
        ),
        (
            "the motivation board",
            Some(&motivation),
            format!("/p/{here}/stations/oven"),
            403,
        ),
        (
            "a cook",
            Some(&cook),
            format!("/p/{here}/stations/oven"),
            200,
        ),
        (
            "a cook",
            Some(&cook),
            format!("/p/{here}/stations/dough"),
            200,
        ),
        (
            "a cook",
            Some(&cook),
            format!("/p/{there}/stations/oven"),
            403,
        ),
        ("a cook", Some(&cook), format!("/p/{here}/board"), 403),
        ("a cashier", Some(&cashier), format!("/p/{here}/board"), 200),
        (
            "a cashier",
            Some(&cashier),
            format!("/p/{there}/board"),
            403,
        ),
        (
            "a cashier",
            Some(&cashier),
            format!("/p/{here}/stations/oven"),
            403,
        ),
        (
            "the shift manager",
            Some(&app.manager_token),
            format!("/p/{here}/stations/packing"),
            200,
        ),
        (
            "the shift manager",
            Some(&app.manager_token),
            format!("/p/{here}/board"),
            200,
        ),
        (
            "the chain admin",
            Some(&app.admin_token),
            format!("/p/{there}/stations/oven"),
            200,
        ),
    ];
    for (who, token, path, expected) in matrix {
        let mut req = test::TestRequest::get().uri(&path);
        if let Some(token) = token {
            req = req.insert_header(("authorization", format!("Bearer {token}")));
        }
        let got = status(test::call_service(&service, req.to_request()).await);
        assert_eq!(got, expected, "{who} on {path}");
    }

    // The tablet's name is what a handler records as the actor.
    let req = test::TestRequest::get()
        .uri(&format!("/p/{here}/stations/oven"))
        .insert_header(("authorization", format!("Bearer {oven}")))
        .to_request();
    let body = test::call_and_read_body(&service, req).await;
    assert_eq!(body, "oven tablet");
}
