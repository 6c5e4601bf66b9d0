//! The whole pairing: a tablet asks for a code, waits, a manager approves it as the oven tablet,
//! the tablet picks up its token, and the token introspects as that station's tablet.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn a_tablet_pairs_by_code_and_works_as_its_station() {
    let app = spawn_app().await;
    let codes = app.request_code().await;
    let user_code = codes["user_code"].as_str().unwrap().to_owned();
    let device_code = codes["device_code"].as_str().unwrap().to_owned();
    assert_eq!(user_code.len(), 9, "{user_code}");
    assert_eq!(&user_code[4..5], "-");
    assert!(
        user_code
            .bytes()
            .filter(|b| *b != b'-')
            .all(|b| b"BCDFGHJKLMNPQRSTVWXZ".contains(&b))
    );
    assert!(device_code.len() >= 22, "at least 128 bits: {device_code}");
    let uri = &app.settings.oauth.verification_uri;
    assert_eq!(codes["verification_uri"], json!(uri));
    assert_eq!(
        codes["verification_uri_complete"],
        json!(format!("{uri}?user_code={user_code}"))
    );
    assert_eq!(codes["expires_in"], json!(600));
    assert_eq!(codes["interval"], json!(5));

    assert_eq!(
        oauth_error(app.poll(&device_code).await).await,
        "authorization_pending"
    );

    // The manager types it in lower case with a space instead of the dash.
    let typed = user_code.to_lowercase().replace('-', " ");
    let response = app.lookup(&app.manager_token, &typed).await;
    assert_eq!(response.status(), StatusCode::OK);
    let seen = json_body(response).await;
    assert_eq!(seen["user_code"], json!(user_code));
    assert_eq!(seen["status"], json!("pending"));
    assert_eq!(seen["ip"], json!("10.9.9.9"));
    assert_eq!(seen["user_agent"], json!("KitchenTablet/1.0"));
    assert!(seen["requested_at"].is_string() && seen["expires_at"].is_string());

    let response = app
        .approve(&app.manager_token, &typed, app.tablet("oven"))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(json_body(response).await["status"], json!("approved"));

    let response = app.poll(&device_code).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers().get("cache-control").unwrap(), "no-store");
    let issued = json_body(response).await;
    let token = issued["access_token"].as_str().unwrap();
    assert!(
        token.starts_with("kdt_") && token.len() >= 4 + 22,
        "{token}"
    );
    assert_eq!(issued["token_type"], json!("Bearer"));
    assert_eq!(issued["kind"], json!("kitchen_station"));
    assert_eq!(issued["station"], json!("oven"));
    assert_eq!(issued["pizzeria_id"], json!(app.pizzeria_id));
    assert_eq!(issued["name"], json!("oven tablet"));
    assert!(issued.get("expires_in").is_none(), "long-lived: {issued}");
    let device_id = issued["device_id"].as_str().unwrap();

    // Another service asks what the token is.
    let answer = app.introspect(token).await;
    assert_eq!(answer["active"], json!(true));
    assert_eq!(answer["device"]["device_id"], json!(device_id));
    assert_eq!(answer["device"]["kind"], json!("kitchen_station"));
    assert_eq!(answer["device"]["station"], json!("oven"));
    assert_eq!(answer["device"]["pizzeria_id"], json!(app.pizzeria_id));

    // The verifier every service uses agrees.
    let verifier = app.device_verifier();
    let client = access::ClientInfo {
        ip: "10.8.8.8".into(),
        user_agent: Some("Tablet via tracker".into()),
    };
    let device = verifier.verify(token, &client).await.unwrap().unwrap();
    assert!(device.is_station(app.pizzeria_id, "oven"));

    // Managers see it, with who approved it and where it was last seen.
    let response = app.list_devices(&app.office_token).await;
    assert_eq!(response.status(), StatusCode::OK);
    let list = json_body(response).await;
    let listed = &list["devices"][0];
    assert_eq!(listed["device_id"], json!(device_id));
    assert_eq!(listed["kind"], json!("kitchen_station"));
    assert_eq!(listed["name"], json!("oven tablet"));
    assert_eq!(listed["station"], json!("oven"));
    assert_eq!(listed["approved_by_name"], json!("manager (test)"));
    assert_eq!(listed["last_ip"], json!("10.8.8.8"));
    assert_eq!(listed["last_user_agent"], json!("Tablet via tracker"));
    assert!(listed["created_at"].is_string() && listed["last_seen_at"].is_string());
    assert!(listed["revoked_at"].is_null());
}

#[tokio::test]
async fn a_board_and_a_renamed_tablet() {
    let app = spawn_app().await;
    let board = app.pair(app.board()).await;
    assert_eq!(board["kind"], json!("order_board"));
    assert!(board.get("station").is_none());
    let tablet = app.pair(app.tablet("dough")).await;
    let id = tablet["device_id"].as_str().unwrap();

    let response = app
        .change_device(
            &app.office_token,
            id,
            &json!({ "name": "Dough 2", "station": "topping" }),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let changed = json_body(response).await;
    assert_eq!(changed["name"], json!("Dough 2"));
    assert_eq!(changed["station"], json!("topping"));
    let answer = app
        .introspect(tablet["access_token"].as_str().unwrap())
        .await;
    assert_eq!(answer["device"]["station"], json!("topping"));
    assert_eq!(answer["device"]["name"], json!("Dough 2"));

    let list = json_body(app.list_devices(&app.office_token).await).await;
    assert_eq!(list["devices"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn a_screen_speaks_the_language_its_approver_chose_and_a_board_keeps_its_privacy_mode() {
    let app = spawn_app().await;
    let mut choice = app.tablet("dough");
    choice["language"] = json!("ru");
    let tablet = app.pair(choice).await;
    let tablet_token = tablet["access_token"].as_str().unwrap();
    let answer = app.introspect(tablet_token).await;
    assert_eq!(answer["device"]["language"], json!("ru"));
    // A tablet has no board mode.
    assert!(answer["device"].get("board_mode").is_none());

    let board = app.pair(app.board()).await;
    let board_id = board["device_id"].as_str().unwrap();
    let board_token = board["access_token"].as_str().unwrap();
    let answer = app.introspect(board_token).await;
    assert!(answer["device"].get("language").is_none());
    assert_eq!(answer["device"]["board_mode"], json!("name"));

    // The shift manager, who may approve devices, sets how the board looks; no rename right
    // is needed for that.
    let response = app
        .change_device(
            &app.manager_token,
            board_id,
            &json!({ "board_mode": "icon", "language": "ru" }),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let changed = json_body(response).await;
    assert_eq!(changed["board_mode"], json!("icon"));
    assert_eq!(changed["language"], json!("ru"));
    let answer = app.introspect(board_token).await;
    assert_eq!(answer["device"]["board_mode"], json!("icon"));
    assert_eq!(answer["device"]["language"], json!("ru"));
    // Announced like every change, so cached answers elsewhere are dropped.
    let renamed = app
        .outbox()
        .await
        .into_iter()
        .filter(|(key, envelope)| {
            key == "devices.device.renamed" && envelope["subject"] == json!(board_id)
        })
        .count();
    assert_eq!(renamed, 1);

    let response = app
        .change_device(&app.manager_token, board_id, &json!({ "name": "TV 2" }))
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let response = app
        .change_device(
            &app.manager_token,
            board_id,
            &json!({ "board_mode": "photo" }),
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error_field(response).await, "board_mode");
    let response = app
        .change_device(&app.manager_token, board_id, &json!({ "language": "xx" }))
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error_field(response).await, "language");
    let tablet_id = tablet["device_id"].as_str().unwrap();
    let response = app
        .change_device(
            &app.manager_token,
            tablet_id,
            &json!({ "board_mode": "number" }),
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error_field(response).await, "board_mode");

    let codes = app.request_code().await;
    let mut choice = app.board();
    choice["language"] = json!("fr");
    let response = app
        .approve(
            &app.manager_token,
            codes["user_code"].as_str().unwrap(),
            choice,
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error_field(response).await, "language");
}
