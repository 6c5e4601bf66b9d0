use crate::helpers::spawn_app;

#[tokio::test]
async fn the_ops_routes_answer() {
    let app = spawn_app().await;

    let live = app
        .client
        .get(app.url("/health/live"))
        .send()
        .await
        .unwrap();
    assert_eq!(live.status().as_u16(), 200);

    // spawn_app waited for it: the consumer is connected and the database answers.
    let ready = app
        .client
        .get(app.url("/health/ready"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status().as_u16(), 200);

    let metrics = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(metrics.status().as_u16(), 200);
    assert!(
        metrics
            .text()
            .await
            .unwrap()
            .contains("process_resident_memory_bytes")
    );

    let missing = app.client.get(app.url("/nope")).send().await.unwrap();
    assert_eq!(missing.status().as_u16(), 404);
}
