//! Every service answers errors as the Problem schema of `docs/openapi.yaml` says (RFC 9457
//! problem details), checked against the schema as the document states it: its required
//! members, no others, their types, their patterns and bounds. The document is read as text,
//! as `crates/contracts/tests/openapi.rs` reads it, so no YAML parser joins the build; the
//! reader understands the flat shape the Problem schema has and fails loudly on anything else.

use std::collections::BTreeMap;

use access::Role;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use system_tests::AccessPeers;
use uuid::Uuid;

/// One member of the schema: its JSON type and what else it says about it.
#[derive(Debug, Default)]
struct Member {
    kind: String,
    pattern: Option<regex_lite::Regex>,
    minimum: Option<i64>,
    maximum: Option<i64>,
}

#[derive(Debug)]
struct ProblemSchema {
    required: Vec<String>,
    closed: bool,
    members: BTreeMap<String, Member>,
}

fn unquote(value: &str) -> String {
    let value = value.trim();
    match value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')) {
        Some(inner) => inner.replace("''", "'"),
        None => value.to_owned(),
    }
}

/// `components.schemas.Problem` of docs/openapi.yaml.
fn problem_schema() -> ProblemSchema {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/openapi.yaml");
    let text = std::fs::read_to_string(path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let start = lines
        .iter()
        .position(|l| *l == "    Problem:")
        .expect("docs/openapi.yaml has a Problem schema");
    let block: Vec<&str> = lines[start + 1..]
        .iter()
        .take_while(|l| l.is_empty() || l.starts_with("      "))
        .copied()
        .collect();
    let mut schema = ProblemSchema {
        required: Vec::new(),
        closed: false,
        members: BTreeMap::new(),
    };
    let mut current: Option<String> = None;
    // The lines of a block scalar (`description: |`) deeper than its key are text.
    let mut text_below: Option<usize> = None;
    let mut in_properties = false;
    for line in block {
        let indent = line.len() - line.trim_start().len();
        if line.trim().is_empty() || text_below.is_some_and(|key| indent > key) {
            continue;
        }
        text_below = None;
        let Some((key, value)) = line.trim().split_once(':') else {
            continue;
        };
        if matches!(value.trim(), "|" | ">") {
            text_below = Some(indent);
            continue;
        }
        if indent == 6 {
            in_properties = key == "properties";
        }
        match (indent, key) {
            (6, "required") => {
                schema.required = value
                    .trim()
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .split(',')
                    .map(|m| m.trim().to_owned())
                    .collect();
            }
            (6, "additionalProperties") => schema.closed = value.trim() == "false",
            (8, name) if in_properties => {
                assert!(value.trim().is_empty(), "write {name} as a block: {line}");
                current = Some(name.to_owned());
                schema.members.insert(name.to_owned(), Member::default());
            }
            (10, rule) if in_properties => {
                let name = current.as_ref().expect("a rule inside a property");
                let member = schema.members.get_mut(name).unwrap();
                match rule {
                    "type" => member.kind = unquote(value),
                    "pattern" => {
                        member.pattern = Some(regex_lite::Regex::new(&unquote(value)).unwrap())
                    }
                    "minimum" => member.minimum = Some(value.trim().parse().unwrap()),
                    "maximum" => member.maximum = Some(value.trim().parse().unwrap()),
                    _ => {}
                }
            }
            _ => {}
        }
    }
    assert!(
        schema.members.values().all(|m| !m.kind.is_empty()),
        "every member of Problem has a type: {schema:?}"
    );
    schema
}

impl ProblemSchema {
    /// What is wrong with `body` as a problem, if anything.
    fn violations(&self, body: &Value) -> Vec<String> {
        let Some(object) = body.as_object() else {
            return vec!["not an object".into()];
        };
        let mut wrong: Vec<String> = self
            .required
            .iter()
            .filter(|m| !object.contains_key(*m))
            .map(|m| format!("{m} is missing"))
            .collect();
        for (name, value) in object {
            let Some(member) = self.members.get(name) else {
                if self.closed {
                    wrong.push(format!("{name} is not in the schema"));
                }
                continue;
            };
            let typed = match member.kind.as_str() {
                "string" => value
                    .as_str()
                    .is_some_and(|s| member.pattern.as_ref().is_none_or(|p| p.is_match(s))),
                "integer" => value.as_i64().is_some_and(|n| {
                    member.minimum.is_none_or(|min| n >= min)
                        && member.maximum.is_none_or(|max| n <= max)
                }),
                other => panic!("the reader knows no type {other}"),
            };
            if !typed {
                wrong.push(format!("{name} = {value} breaks {member:?}"));
            }
        }
        wrong
    }
}

/// The error responses to check: (what, the response).
struct Collected {
    schema: ProblemSchema,
    wrong: Vec<String>,
    seen: Vec<u16>,
}

impl Collected {
    async fn check(&mut self, what: &str, response: reqwest::Response) {
        let status = response.status();
        let content_type = testkit::content_type(&response);
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if !status.is_client_error() && !status.is_server_error() {
            self.wrong.push(format!("{what}: {status} is not an error"));
            return;
        }
        if content_type != "application/problem+json" {
            self.wrong
                .push(format!("{what}: {status} as {content_type:?}: {body}"));
        }
        for v in self.schema.violations(&body) {
            self.wrong.push(format!("{what}: {v}: {body}"));
        }
        if body["status"] != json!(status.as_u16()) {
            self.wrong
                .push(format!("{what}: status {} in the body", body["status"]));
        }
        self.seen.push(status.as_u16());
    }
}

#[test]
fn the_reader_of_the_problem_schema_refuses_what_the_schema_refuses() {
    let schema = problem_schema();
    assert!(schema.closed);
    for member in ["type", "title", "status", "detail", "code"] {
        assert!(schema.required.iter().any(|m| m == member), "{member}");
    }
    let good = json!({
        "type": "tag:kitchen-tracker,2026:problem:not_found",
        "title": "Not Found",
        "status": 404,
        "detail": "order not found",
        "instance": "/api/v1/orders",
        "code": "not_found",
        "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
    });
    assert_eq!(schema.violations(&good), Vec::<String>::new());
    // The shape before RFC 9457, a foreign member, a wrong type and a broken pattern.
    let old = json!({ "error": { "code": "not_found", "message": "order not found" } });
    assert!(!schema.violations(&old).is_empty());
    for (member, value) in [
        ("extra", json!(1)),
        ("status", json!("404")),
        ("status", json!(200)),
        ("type", json!("about:blank")),
        ("trace_id", json!("xyz")),
    ] {
        let mut bad = good.clone();
        bad[member] = value.clone();
        assert!(
            !schema.violations(&bad).is_empty(),
            "{member} = {value} passed"
        );
    }
}

#[tokio::test]
async fn every_service_answers_errors_as_the_problem_schema_of_the_document() {
    let bus = testkit::test_bus();
    let peers = AccessPeers::start(&bus).await;
    let (tracker_url, tracker_shutdown, _tracker_db) = crate::tracker_beside(&peers, &bus).await;
    let pizzeria_id = Uuid::now_v7();
    let client = reqwest::Client::new();
    let admin = peers.admin_token.clone();
    let response = client
        .put(format!("{tracker_url}/api/v1/pizzerias/{pizzeria_id}"))
        .bearer_auth(&admin)
        .json(&json!({ "name": "Pizzeria on Lenina 1" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    // The tracker announces it; auth, which learns of pizzerias only that way, grants roles
    // in it once it has heard.
    peers.await_pizzerias(&[pizzeria_id]).await;
    let cook = peers.staff(Role::KitchenStaff, pizzeria_id).await.token;

    let mut collected = Collected {
        schema: problem_schema(),
        wrong: Vec::new(),
        seen: Vec::new(),
    };
    let send = |base: &str, method: Method, path: &str, token: Option<&str>| {
        let request = client.request(method, format!("{base}{path}"));
        match token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    };
    let p = format!("/api/v1/pizzerias/{pizzeria_id}");
    let (t, a, d) = (
        tracker_url.as_str(),
        peers.auth_url.as_str(),
        peers.devices_url.as_str(),
    );
    let cases = [
        (
            "tracker 401",
            send(t, Method::GET, &format!("{p}/orders"), None),
        ),
        (
            "tracker 403",
            send(t, Method::GET, &format!("{p}/orders"), Some(&cook)),
        ),
        (
            "tracker 404 order",
            send(
                t,
                Method::GET,
                &format!("{p}/orders/{}", Uuid::new_v4()),
                Some(&admin),
            ),
        ),
        ("tracker 404 route", send(t, Method::GET, "/nowhere", None)),
        (
            "tracker 400",
            send(
                t,
                Method::GET,
                "/api/v1/pizzerias/not-a-uuid/orders",
                Some(&admin),
            ),
        ),
        (
            "tracker 422",
            send(t, Method::GET, &format!("{p}/orders?limit=0"), Some(&admin)),
        ),
        (
            "tracker 415",
            send(t, Method::PUT, &p, Some(&admin)).body(r#"{"name":"x"}"#),
        ),
        (
            "tracker 413",
            send(t, Method::PUT, &p, Some(&admin))
                .header("content-type", "application/json")
                .body(vec![b' '; 300 * 1024]),
        ),
        ("auth 401", send(a, Method::GET, "/api/v1/me", None)),
        (
            "auth 404",
            send(
                a,
                Method::GET,
                &format!("/api/v1/users/{}", Uuid::new_v4()),
                Some(&admin),
            ),
        ),
        (
            "auth 422",
            send(a, Method::POST, "/api/v1/users", Some(&admin)).json(&json!({ "login": "" })),
        ),
        (
            "auth 400",
            send(a, Method::POST, "/api/v1/sessions", None)
                .header("content-type", "application/json")
                .body("{"),
        ),
        (
            "auth 403",
            send(a, Method::GET, "/api/v1/audit", Some(&cook)),
        ),
        (
            "devices 401",
            send(d, Method::GET, &format!("{p}/devices"), None),
        ),
        (
            "devices 403",
            send(d, Method::GET, &format!("{p}/devices"), Some(&cook)),
        ),
        (
            "devices 422",
            send(
                d,
                Method::POST,
                "/api/v1/device-authorizations/lookup",
                Some(&admin),
            )
            .json(&json!({ "user_code": "AAAA-AAAA" })),
        ),
        (
            "devices 404",
            send(
                d,
                Method::POST,
                "/api/v1/device-authorizations/lookup",
                Some(&admin),
            )
            .json(&json!({ "user_code": "BCDF-GHJK" })),
        ),
    ];
    for (what, request) in cases {
        collected.check(what, request.send().await.unwrap()).await;
    }
    // The OAuth endpoints keep RFC 6749's own error body, not a problem.
    let response = client
        .post(format!("{d}/oauth/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=password")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.unwrap();
    assert!(body["error"].is_string(), "{body}");

    tracker_shutdown.trigger();
    assert!(collected.wrong.is_empty(), "{}", collected.wrong.join("\n"));
    for status in [400, 401, 403, 404, 413, 415, 422] {
        assert!(collected.seen.contains(&status), "no {status} was checked");
    }
}
