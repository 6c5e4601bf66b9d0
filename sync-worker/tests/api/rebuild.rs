//! `sync-worker rebuild`: the mirror rebuilt from the history stream into a scratch database
//! equals the live one, and a live row changed by hand shows up as a difference.

use std::process::Command;

use bus::stream::StartAt;
use chrono::Utc;
use contracts::{StaffRoleGrant, UserCreated};
use sync_worker::rebuild;
use testkit::TestDatabase;
use uuid::Uuid;

use crate::helpers::{Message, TestApp, TestOrder, spawn_app};

/// A worker with the history stream declared. The worker declares it when it starts, with its
/// settings' retention; declaring it here with the same retention makes sure it exists before
/// anything is published.
async fn spawn_with_history() -> TestApp {
    let app = spawn_app().await;
    rebuild::declare_stream(&app.bus, &app.history_retention())
        .await
        .expect("declare the history stream");
    app
}

/// Two orders (one arriving newest first and twice, as a relay that lost its confirms sends
/// it), a user, and a message that is no event at all; waits until the worker has them all.
async fn publish_history(app: &TestApp) -> (TestOrder, TestOrder, Uuid) {
    let straight = TestOrder::new(101);
    let shuffled = TestOrder::new(102);
    let user_id = Uuid::new_v4();
    app.publish(&Message::from_service(
        "auth",
        1,
        &UserCreated {
            user_id,
            login: "anna.p".into(),
            display_name: "Anna P.".into(),
            roles: vec![StaffRoleGrant {
                role: "shift_manager".into(),
                pizzeria_id: Some(straight.pizzeria_id),
            }],
            active: true,
            at: Utc::now(),
            actor_id: None,
        },
    ))
    .await;
    app.publish_raw("tracker.order.packed", b"not json").await;
    app.publish_straight_and_shuffled(&straight.whole_life(), &shuffled.whole_life())
        .await;
    app.wait_for_dead_letters(1).await;
    // Every event committed by the live worker (an empty queue can still mean one in hand).
    let events = (straight.whole_life().len() + shuffled.whole_life().len() + 1) as i64;
    testkit::eventually("every event handled", crate::helpers::PATIENCE, || async {
        let handled: i64 = sqlx::query_scalar("select count(*) from inbox")
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
        (handled == events).then_some(())
    })
    .await;
    (straight, shuffled, user_id)
}

/// A database URL for `--into`: the test server, a database of the test's own.
fn scratch_url(scratch: &TestDatabase) -> String {
    let server = std::env::var("DATABASE_URL").expect("DATABASE_URL");
    let (server, _) = server.rsplit_once('/').expect("a URL with a database");
    format!("{server}/{}", scratch.settings.database_name)
}

#[tokio::test]
async fn a_mirror_rebuilt_from_the_stream_equals_the_live_one() {
    let app = spawn_with_history().await;
    let (straight, shuffled, user_id) = publish_history(&app).await;

    let scratch = TestDatabase::create(&sync_worker::db::MIGRATOR).await;
    let report = rebuild::rebuild(app.settings(), StartAt::First, &scratch_url(&scratch))
        .await
        .expect("rebuild");
    assert!(report.equal(), "{report}");
    assert_eq!(report.comparison.orders, 2, "{report}");
    assert_eq!(report.comparison.users, 1, "{report}");
    // The shuffled order came twice; the second copies are skipped.
    let events = straight.whole_life().len() + shuffled.whole_life().len() + 1;
    assert_eq!(report.applied as usize, events, "{report}");
    assert_eq!(
        report.duplicates as usize,
        shuffled.whole_life().len(),
        "{report}"
    );
    assert_eq!(report.refused.len(), 1, "{report}");
    assert!(
        report.refused[0].1.contains("not a CloudEvents"),
        "{report}"
    );
    assert!(report.orphans.is_empty(), "{report}");
    for table in &report.comparison.tables {
        assert_eq!(table.live_checksum, table.copy_checksum, "{report}");
        assert_eq!(table.live_rows, table.copy_rows, "{report}");
        assert_eq!(table.live_rows == 0, table.table == "devices", "{report}");
    }
    let copied: i64 = sqlx::query_scalar("select count(*) from order_history")
        .fetch_one(&scratch.pool)
        .await
        .unwrap();
    assert!(copied > 0);
    let member: i64 = sqlx::query_scalar("select count(*) from membership where user_uuid = $1")
        .bind(user_id)
        .fetch_one(&scratch.pool)
        .await
        .unwrap();
    assert_eq!(member, 1);
}

#[tokio::test]
async fn the_rebuild_command_names_a_live_row_that_differs_and_exits_with_1() {
    let app = spawn_with_history().await;
    let (straight, _, _) = publish_history(&app).await;

    let first = TestDatabase::create(&sync_worker::db::MIGRATOR).await;
    let (code, out) = run_rebuild(&app, &scratch_url(&first));
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("The copy equals the live legacy tables"),
        "{out}"
    );

    sqlx::query("update orders set client_name = 'Edited by hand' where order_uuid = $1")
        .bind(straight.order_id)
        .execute(&app.db.pool)
        .await
        .unwrap();
    let second = TestDatabase::create(&sync_worker::db::MIGRATOR).await;
    let (code, out) = run_rebuild(&app, &scratch_url(&second));
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("First differences in orders"), "{out}");
    assert!(out.contains(&straight.order_id.to_string()), "{out}");
    assert!(out.contains("Edited by hand"), "{out}");
    assert!(out.contains("The copy differs"), "{out}");
    // Only that table differs.
    assert!(!out.contains("First differences in order_history"), "{out}");

    // The same scratch database again: refused, exit status 2.
    let (code, out) = run_rebuild(&app, &scratch_url(&second));
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("already holds"), "{out}");
}

/// Runs the built `sync-worker rebuild --since first` against the test's worker; its exit
/// status and everything it printed.
fn run_rebuild(app: &TestApp, into: &str) -> (Option<i32>, String) {
    let settings = app.settings();
    let url = std::env::var("DATABASE_URL").expect("DATABASE_URL");
    let mut command = Command::new(env!("CARGO_BIN_EXE_sync-worker"));
    command
        .args(["rebuild", "--since", "first", "--into", into])
        .env("APP_DATABASE__URL", url)
        .env(
            "APP_DATABASE__DATABASE_NAME",
            &settings.database.database_name,
        )
        .env(
            "APP_BUS__URL",
            secrecy::ExposeSecret::expose_secret(&settings.bus.url),
        )
        .env("APP_BUS__EXCHANGE", &settings.bus.exchange)
        .env("RUST_LOG", "warn");
    for (source, user) in &settings.bus.publishers {
        command.env(
            format!("APP_BUS__PUBLISHERS__{}", source.to_uppercase()),
            user,
        );
    }
    let output = command.output().expect("run sync-worker rebuild");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.code(), text)
}
