//! The service shell: health, readiness, limits and shutdown.

use clinic_tests::spawn_app;
use sqlx::PgPool;

#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn health_and_readiness_answer_when_the_database_is_migrated(pool: PgPool) {
    let app = spawn_app(pool).await;
    let health = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let ready = app.http.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    assert_eq!(ready.text().await.unwrap(), "ready");
    app.stop().await.unwrap();
}

#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn readiness_fails_when_migrations_are_missing(pool: PgPool) {
    sqlx::query("DELETE FROM _sqlx_migrations")
        .execute(&pool)
        .await
        .unwrap();
    let app = spawn_app(pool).await;
    let ready = app.http.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 503);
}

#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn unknown_routes_and_oversize_bodies_get_clear_answers(pool: PgPool) {
    let app = spawn_app(pool).await;
    let missing = app.http.get(app.url("/nope")).send().await.unwrap();
    assert_eq!(missing.status(), 404);
    assert!(missing.headers().contains_key("x-request-id"));
    let body = vec![b'x'; 2 * 1024 * 1024];
    let oversize = app
        .http
        .post(app.url("/healthz"))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(oversize.status(), 413);
    // The service is still up.
    let health = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
}

#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn shutdown_stops_taking_connections(pool: PgPool) {
    let app = spawn_app(pool).await;
    let url = app.url("/healthz");
    let http = app.http.clone();
    app.stop().await.unwrap();
    assert!(http.get(url).send().await.is_err(), "no longer listening");
}
