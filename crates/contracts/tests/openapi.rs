//! `docs/openapi.yaml` documents every HTTP route the services register, on the right server,
//! and nothing they do not. Both sides are read as text, so this needs no YAML parser and no
//! running service: the routes from `.route("...", web::<method>()...)` in each service's
//! `src/routes/mod.rs` and `src/startup.rs` (inside `web::scope("...")` prefixes), plus the
//! shared health routes of `service-kit` that its `ServiceBuilder` serves; the document's
//! paths from its `paths:` section (a path at two spaces, a method at four), each operation's
//! server from the `servers: [*tracker]` line of the operation or else of its path.

use std::{collections::BTreeSet, path::PathBuf};

/// The services whose JSON APIs the document covers; each name is also its server's anchor in
/// the document (`servers: [*tracker]`).
const SERVICES: [&str; 4] = ["tracker", "sync-worker", "auth", "devices"];

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// (service, METHOD, path), e.g. ("tracker", "POST", "/api/v1/orders").
type Route = (String, String, String);

fn read(relative: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Which bytes are inside string literals, so parentheses there are not counted.
fn in_string_mask(code: &str) -> Vec<bool> {
    let mut mask = vec![false; code.len()];
    let (mut inside, mut escaped) = (false, false);
    for (i, b) in code.bytes().enumerate() {
        if inside {
            mask[i] = true;
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                inside = false;
            }
        } else if b == b'"' {
            inside = true;
            mask[i] = true;
        }
    }
    mask
}

/// The string literal starting right after `at` (which must be `"`), and where it ends.
fn literal_at(code: &str, at: usize) -> Option<(String, usize)> {
    let rest = code.get(at..)?.strip_prefix('"')?;
    let end = rest.find('"')?;
    Some((rest[..end].to_owned(), at + 1 + end + 1))
}

/// `(METHOD, full path)` of every `.route("path", web::method()` in `code`, with the prefixes
/// of the `web::scope("prefix")` calls it is chained onto.
fn registered_routes(code: &str) -> Vec<(String, String)> {
    // Formatting must not matter: rustfmt splits long `.route(` calls over lines. Comment lines
    // go first, and the one char literal that would confuse the string mask.
    let code: String = code
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .flat_map(str::split_whitespace)
        .collect::<String>()
        .replace("'\"'", "'q'");
    assert!(
        !code.contains("web::resource("),
        "routes registered with web::resource are not read by this test; extend it"
    );
    let mask = in_string_mask(&code);
    let depth: Vec<i32> = code
        .bytes()
        .zip(&mask)
        .scan(0, |d, (b, &quoted)| {
            if !quoted {
                match b {
                    b'(' => *d += 1,
                    b')' => *d -= 1,
                    _ => {}
                }
            }
            Some(*d)
        })
        .collect();
    // Each scope covers its chained calls: up to where the parenthesis around it closes.
    let mut scopes: Vec<(usize, usize, String)> = Vec::new();
    for (start, _) in code.match_indices("web::scope(") {
        let open = start + "web::scope(".len();
        let (prefix, _) = literal_at(&code, open)
            .unwrap_or_else(|| panic!("web::scope without a literal prefix: {}", &code[start..]));
        let outer = if start == 0 { 0 } else { depth[start - 1] };
        let end = (start..code.len())
            .find(|&i| depth[i] < outer)
            .unwrap_or(code.len());
        scopes.push((start, end, prefix));
    }
    let mut routes = Vec::new();
    for (at, _) in code.match_indices(".route(") {
        if mask[at] {
            continue;
        }
        let (path, after) = literal_at(&code, at + ".route(".len())
            .unwrap_or_else(|| panic!("a route without a literal path: {}", &code[at..]));
        let method = code[after..]
            .strip_prefix(",web::")
            .and_then(|rest| rest.split('(').next())
            .filter(|m| METHODS.contains(m))
            .unwrap_or_else(|| panic!("cannot read the method of route {path}"));
        let prefix: String = scopes
            .iter()
            .filter(|(start, end, _)| *start < at && at < *end)
            .map(|(_, _, prefix)| prefix.as_str())
            .collect();
        routes.push((method.to_uppercase(), format!("{prefix}{path}")));
    }
    routes
}

/// What the services register, per service.
fn services_routes() -> BTreeSet<Route> {
    let ops = read("crates/service-kit/src/http.rs");
    let ops_fn = ops
        .find("pub fn ops_routes")
        .map(|start| &ops[start..start + ops[start..].find("\n}\n").unwrap_or(ops.len() - start)])
        .unwrap_or_else(|| panic!("service-kit has no ops_routes"));
    let dead_letters = read("crates/bus/src/dead_letters/http.rs");
    let mut all = BTreeSet::new();
    for service in SERVICES {
        let code = read(&format!("{service}/src/startup.rs"))
            + &read(&format!("{service}/src/routes/mod.rs"));
        let mut routes = registered_routes(&code);
        // The health and metrics routes come with `service_kit::app::ServiceBuilder`, which
        // serves `ops_routes` on a service without an ops listener of its own.
        if code.contains("ServiceBuilder::") && !code.contains("ops_listener") {
            routes.extend(registered_routes(ops_fn));
        }
        // The dead-letter API is written once in the bus crate and configured by each service
        // with a consumer.
        if code.contains("dead_letter_routes") || code.contains("dead_letters::http::routes") {
            routes.extend(registered_routes(&dead_letters));
        }
        assert!(
            routes.iter().any(|(_, path)| path.starts_with("/api/v1/")),
            "found no /api/v1 route of {service}: has the way routes are registered changed?"
        );
        for (method, path) in routes {
            all.insert((service.to_owned(), method, path));
        }
    }
    all
}

/// The `*name` anchors of a `servers: [*a, *b]` line.
fn servers_of(line: &str) -> Vec<String> {
    line.split('*')
        .skip(1)
        .map(|s| {
            s.chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
                .collect()
        })
        .collect()
}

/// What the document describes: every operation with each server it names.
fn documented_routes() -> BTreeSet<Route> {
    let doc = read("docs/openapi.yaml");
    let lines = doc
        .lines()
        .skip_while(|l| *l != "paths:")
        .skip(1)
        .take_while(|l| l.is_empty() || l.starts_with(' ') || l.starts_with('#'));
    let mut documented = BTreeSet::new();
    let mut path: Option<String> = None;
    let mut path_servers: Vec<String> = Vec::new();
    // (method, its own servers) of the path being read.
    let mut operations: Vec<(String, Vec<String>)> = Vec::new();
    let mut flush = |path: &Option<String>, path_servers: &[String], ops: &mut Vec<_>| {
        let Some(path) = path else { return };
        for (method, servers) in ops.drain(..) {
            let servers: &Vec<String> = &servers;
            let servers = if servers.is_empty() {
                path_servers
            } else {
                servers
            };
            assert!(
                !servers.is_empty(),
                "openapi.yaml: {method} {path} names no server (servers: [*tracker])"
            );
            for server in servers {
                documented.insert((server.clone(), String::from(&method), path.clone()));
            }
        }
    };
    for line in lines {
        let indent = line.len() - line.trim_start().len();
        let text = line.trim();
        if text.starts_with('#') || text.is_empty() {
            continue;
        }
        if indent == 2 && text.starts_with('/') && text.ends_with(':') {
            flush(&path, &path_servers, &mut operations);
            path = Some(text.trim_end_matches(':').to_owned());
            path_servers.clear();
        } else if indent == 4 && text.starts_with("servers:") {
            path_servers = servers_of(text);
        } else if indent == 4 && METHODS.iter().any(|m| text == format!("{m}:")) {
            operations.push((text.trim_end_matches(':').to_uppercase(), Vec::new()));
        } else if indent == 6
            && text.starts_with("servers:")
            && let Some((_, servers)) = operations.last_mut()
        {
            *servers = servers_of(text);
        }
    }
    flush(&path, &path_servers, &mut operations);
    documented
}

#[test]
fn openapi_documents_every_route_and_only_those() {
    let registered = services_routes();
    let documented = documented_routes();
    let missing: Vec<String> = registered
        .difference(&documented)
        .map(|(s, m, p)| format!("{m} {p} ({s})"))
        .collect();
    let extra: Vec<String> = documented
        .difference(&registered)
        .map(|(s, m, p)| format!("{m} {p} ({s})"))
        .collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "docs/openapi.yaml lacks these routes (or their service in the operation's or path's \
         `servers`):\n  {}\nand describes these, which no service registers:\n  {}",
        missing.join("\n  "),
        extra.join("\n  ")
    );
}

#[test]
fn routes_are_read_through_scopes_and_line_breaks() {
    let code = r#"
        cfg.service(
            web::scope("/api/v1")
                .route("/orders", web::post().to(intake::post_order))
                .route(
                    "/pizzerias/{pizzeria_id}",
                    web::put().to(pizzerias::put_pizzeria),
                ),
        )
        .route("/internal/v1/introspect", web::post().to(introspect::introspect));
    "#;
    assert_eq!(
        registered_routes(code),
        vec![
            ("POST".to_owned(), "/api/v1/orders".to_owned()),
            (
                "PUT".to_owned(),
                "/api/v1/pizzerias/{pizzeria_id}".to_owned()
            ),
            ("POST".to_owned(), "/internal/v1/introspect".to_owned()),
        ]
    );
}
