//! The activation screen against real auth, devices and tracker services: no words from a link
//! reach the page, the "in front of me" box is required, and a refused approval keeps what
//! the approver chose.

use access::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};
use system_tests::{AccessPeers, StaffMember};
use uuid::Uuid;

use crate::helpers::{CSRF, TestApp, spawn_web};

struct Stack {
    web: TestApp,
    peers: AccessPeers,
    pizzeria_id: Uuid,
    manager: StaffMember,
    _tracker: (testkit::TestDatabase, service_kit::shutdown::Shutdown),
}

impl Drop for Stack {
    fn drop(&mut self) {
        self._tracker.1.trigger();
    }
}

async fn stack() -> Stack {
    let bus = testkit::test_bus();
    let peers = AccessPeers::start(&bus).await;
    let pizzeria_id = Uuid::now_v7();
    peers.register_pizzerias(&[pizzeria_id]).await;
    let db = testkit::TestDatabase::create(&tracker::db::MIGRATOR).await;
    let mut settings = system_tests::test_settings!(tracker, db, bus);
    settings.access = peers.access.clone();
    settings.device_access = peers.device_access.clone();
    let (tracker_url, shutdown) = system_tests::run!(tracker, settings);
    let response = reqwest::Client::new()
        .put(format!("{tracker_url}/api/v1/pizzerias/{pizzeria_id}"))
        .bearer_auth(&peers.admin_token)
        .json(&json!({ "name": "Test pizzeria" }))
        .send()
        .await
        .expect("the tracker answers");
    assert!(response.status().is_success(), "{}", response.status());
    let manager = peers.staff(Role::ShiftManager, pizzeria_id).await;
    let (auth_url, devices_url) = (peers.auth_url.clone(), peers.devices_url.clone());
    let (access, device_access) = (peers.access.clone(), peers.device_access.clone());
    let web = spawn_web(|s| {
        s.upstream.tracker_url = tracker_url.clone();
        s.upstream.auth_url = auth_url.clone();
        s.upstream.devices_url = devices_url.clone();
        s.access = access.clone();
        s.device_access = device_access.clone();
        s.bus = bus.clone();
    })
    .await;
    Stack {
        web,
        peers,
        pizzeria_id,
        manager,
        _tracker: (db, shutdown),
    }
}

impl Stack {
    /// A device asks for codes; its user code.
    async fn user_code(&self) -> String {
        let response = reqwest::Client::new()
            .post(format!(
                "{}/oauth/device_authorization",
                self.peers.devices_url
            ))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("client_id=kitchen-web")
            .send()
            .await
            .expect("devices answers");
        let body: Value = response.json().await.expect("JSON");
        body["user_code"].as_str().expect("a user code").to_owned()
    }

    fn cookies(&self) -> String {
        format!(
            "kitchen_staff_session={}; kitchen_csrf={CSRF}",
            self.manager.token
        )
    }

    async fn page(&self, path_and_query: &str) -> (StatusCode, String) {
        let response = self
            .web
            .client
            .get(self.web.url(path_and_query))
            .header("cookie", self.cookies())
            .send()
            .await
            .expect("the web answers");
        let status = response.status();
        (status, response.text().await.expect("a body"))
    }

    async fn approve(&self, fields: &[(&str, &str)]) -> (StatusCode, String) {
        let mut form = vec![("csrf", CSRF)];
        form.extend_from_slice(fields);
        let response = self
            .web
            .client
            .post(self.web.url("/activate/approve"))
            .header("origin", &self.web.address)
            .header("cookie", self.cookies())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(serde_urlencoded::to_string(&form).expect("a form"))
            .send()
            .await
            .expect("the web answers");
        let status = response.status();
        let location = response
            .headers()
            .get("location")
            .map(|v| v.to_str().expect("text").to_owned());
        let body = response.text().await.expect("a body");
        (status, location.unwrap_or(body))
    }
}

#[tokio::test]
async fn a_link_cannot_put_its_own_words_on_the_activation_page() {
    let stack = stack().await;
    let code = stack.user_code().await;
    let (status, body) = stack
        .page(&format!(
            "/activate?user_code={code}&problem=Your+tablet+needs+an+update.+Call+555-0100&done=Call+555-0100"
        ))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains(&code), "the request is shown");
    assert!(!body.contains("555-0100"), "{body}");
    // Known codes still show their own words.
    let (_, body) = stack
        .page(&format!(
            "/activate?user_code={code}&problem=station_required"
        ))
        .await;
    assert!(body.contains("Choose the station this tablet works at."));
}

#[tokio::test]
async fn a_refused_approval_keeps_the_choices_and_the_box_must_be_ticked() {
    let stack = stack().await;
    let code = stack.user_code().await;
    let p = stack.pizzeria_id.to_string();
    let base = [
        ("user_code", code.as_str()),
        ("pizzeria_id", p.as_str()),
        ("kind", "kitchen_station"),
        ("name", "Oven tablet by the door"),
    ];

    // No station for a tablet: the page again, the name still typed in.
    let mut fields = base.to_vec();
    fields.extend([("station", ""), ("present", "yes")]);
    let (status, body) = stack.approve(&fields).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body.contains("Choose the station this tablet works at."),
        "{body}"
    );
    assert!(
        body.contains(r#"value="Oven tablet by the door""#),
        "{body}"
    );

    // The box not ticked: not approved, whatever else is right.
    let mut fields = base.to_vec();
    fields.push(("station", "oven"));
    let (status, body) = stack.approve(&fields).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body.contains("Approve only a device you can see."),
        "{body}"
    );
    assert!(body.contains(r#"value="oven" selected"#), "{body}");

    fields.push(("present", "yes"));
    let (status, location) = stack.approve(&fields).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{location}");
    assert_eq!(location, "/activate?done=approved");
}

/// A shift manager approves devices but does not manage them: the Devices page lets them
/// revoke a lost tablet at once, without renaming or moving it.
#[tokio::test]
async fn a_shift_manager_revokes_a_lost_tablet_from_the_devices_page() {
    let stack = stack().await;
    let tablet = stack.peers.station_tablet(stack.pizzeria_id, "oven").await;
    let (status, body) = stack.page("/activate").await;
    assert_eq!(status, StatusCode::OK);
    let revoke = format!(
        "/p/{}/devices/{}/revoke",
        stack.pizzeria_id, tablet.device_id
    );
    assert!(body.contains(&revoke), "{body}");
    assert!(!body.contains("/rename"), "{body}");
    let response = stack
        .web
        .client
        .post(stack.web.url(&revoke))
        .header("origin", &stack.web.address)
        .header("cookie", stack.cookies())
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("csrf={CSRF}"))
        .send()
        .await
        .expect("the web answers");
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        response.headers()["location"],
        "/activate?done=revoked#devices"
    );
    let (_, body) = stack.page("/activate?done=revoked").await;
    assert!(body.contains("Revoked."), "{body}");
}
