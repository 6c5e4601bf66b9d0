//! The service builder, black-box: a service built from a routes function, shared data and a
//! background task serves its routes and the shared operations routes, answers unknown routes
//! with a problem, is ready only while its task's flag is up, and stops together with its task.

// A panic in a test is a failed test with a clear message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    io::{Read, Write},
    net::TcpStream,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use actix_web::{HttpResponse, web};
use service_kit::{app::ServiceBuilder, config::HttpSettings};

/// `GET path` on `port`: the status code and the body.
async fn get(port: u16, path: &str) -> (u16, String) {
    let path = path.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        let status = answer[9..12].parse().unwrap();
        let body = answer
            .split_once("\r\n\r\n")
            .map(|(_, body)| body.to_owned())
            .unwrap_or_default();
        (status, body)
    })
    .await
    .unwrap()
}

async fn greeting(name: web::Data<String>) -> HttpResponse {
    HttpResponse::Ok().body(format!("hello, {}", name.get_ref()))
}

#[tokio::test]
async fn a_built_service_serves_its_routes_and_health_and_stops_with_its_tasks() {
    let http = HttpSettings {
        host: "127.0.0.1".into(),
        port: 0,
    };
    let mut builder = ServiceBuilder::bind("test", &http, None).unwrap();
    let working = builder.readiness().flag("worker");
    let stopped = Arc::new(AtomicBool::new(false));
    let (shutdown, raise, done) = (builder.shutdown().clone(), working.clone(), stopped.clone());
    builder
        .spawn("worker", async move {
            raise.store(true, Ordering::Relaxed);
            shutdown.wait().await;
            done.store(true, Ordering::Relaxed);
        })
        .data("kitchen".to_owned());
    let service = builder
        .serve(|cfg| {
            cfg.route("/hello", web::get().to(greeting));
        })
        .unwrap();
    let port = service.port();
    let shutdown = service.shutdown().clone();
    let running = tokio::spawn(service.run_until_stopped());

    assert_eq!(get(port, "/hello").await, (200, "hello, kitchen".into()));
    assert_eq!(get(port, "/health/live").await.0, 200);
    let (status, body) = get(port, "/nowhere").await;
    assert_eq!(status, 404);
    assert!(body.contains("\"status\":404"), "a problem body: {body}");
    assert!(
        get(port, "/metrics").await.1.contains("http_requests"),
        "metrics are served"
    );
    let ready = eventually(|| async { get(port, "/health/ready").await.0 == 200 }).await;
    assert!(ready, "ready once the task raised its flag");
    working.store(false, Ordering::Relaxed);
    assert_eq!(get(port, "/health/ready").await.0, 503);

    shutdown.trigger();
    tokio::time::timeout(Duration::from_secs(60), running)
        .await
        .expect("the service stops")
        .unwrap()
        .unwrap();
    assert!(stopped.load(Ordering::Relaxed), "the task stopped with it");
}

/// Polls `check` until it holds (service-kit cannot use testkit, which depends on it).
async fn eventually<F, Fut>(mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    for _ in 0..600 {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}
