//! API and admin keys over real HTTP: the real model served on 127.0.0.1.

#![allow(clippy::unwrap_used)] // a test: a failed unwrap is a failed test

mod support;
use support::*;

use semantic_server::{AuthConfig, ServerConfig};
use serde_json::Value;

const KEY: &str = "test-key-1";
const OTHER_KEY: &str = "test-key-2";
const ADMIN: &str = "admin-key";

async fn keyed_server(admin: Option<&str>) -> TestServer {
    let server = ServerConfig {
        auth: AuthConfig::new([KEY, OTHER_KEY], admin).unwrap(),
        ..ServerConfig::default()
    };
    TestServer::start_custom(engine_config(), server, None).await
}

impl TestServer {
    async fn chat_with(&self, header: (&str, &str)) -> reqwest::Response {
        self.client
            .post(self.url("/v1/chat/completions"))
            .header(header.0, header.1)
            .json(&short_chat(4))
            .send()
            .await
            .unwrap()
    }

    async fn get_with(&self, path: &str, header: Option<(&str, &str)>) -> reqwest::Response {
        let mut request = self.client.get(self.url(path));
        if let Some((name, value)) = header {
            request = request.header(name, value);
        }
        request.send().await.unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_or_wrong_key_is_401_naming_the_headers_without_echoing_the_key() {
    let server = keyed_server(None).await;
    let body = assert_envelope(
        server.chat(&short_chat(4)).await,
        401,
        "authentication_error",
        Some("missing_api_key"),
    )
    .await;
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("Authorization: Bearer") && message.contains("x-api-key"));

    for header in [
        ("authorization", "Bearer not-a-key"),
        ("x-api-key", "not-a-key"),
    ] {
        let body = assert_envelope(
            server.chat_with(header).await,
            401,
            "authentication_error",
            Some("invalid_api_key"),
        )
        .await;
        assert!(!body.to_string().contains("not-a-key"), "{body}");
    }
    // Unknown routes need a key too: no probing the route table.
    let r = server.get_with("/v1/nope", None).await;
    assert_eq!(r.status(), 401);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bearer_and_x_api_key_are_both_accepted() {
    let server = keyed_server(None).await;
    let bearer = format!("Bearer {KEY}");
    let r = server.chat_with(("authorization", &bearer)).await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["object"], "chat.completion", "{body}");
    let r = server.chat_with(("x-api-key", OTHER_KEY)).await;
    assert_eq!(r.status(), 200);
    let r = server
        .get_with("/v1/models", Some(("x-api-key", KEY)))
        .await;
    assert_eq!(r.status(), 200);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_routes_are_401_without_key_403_with_an_api_key_200_with_the_admin_key() {
    let server = keyed_server(Some(ADMIN)).await;
    let path = "/admin/models/current";
    let r = server.get_with(path, None).await;
    assert_envelope(r, 401, "authentication_error", Some("missing_api_key")).await;
    let r = server.get_with(path, Some(("x-api-key", "wrong"))).await;
    assert_envelope(r, 401, "authentication_error", Some("invalid_api_key")).await;
    let r = server.get_with(path, Some(("x-api-key", KEY))).await;
    assert_envelope(r, 403, "permission_error", Some("permission_denied")).await;
    let bearer = format!("Bearer {ADMIN}");
    let r = server
        .get_with(path, Some(("authorization", &bearer)))
        .await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert!(body["fingerprint"].is_string(), "{body}");
    // The admin key is for admin routes only.
    let r = server.chat_with(("x-api-key", ADMIN)).await;
    assert_eq!(r.status(), 401);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_routes_without_an_admin_key_are_403_saying_how_to_enable_them() {
    let server = keyed_server(None).await;
    let r = server
        .get_with("/admin/models/current", Some(("x-api-key", KEY)))
        .await;
    let body = assert_envelope(r, 403, "permission_error", Some("permission_denied")).await;
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("--admin-key"), "{message}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_openapi_need_no_key() {
    let server = keyed_server(Some(ADMIN)).await;
    let r = server.get_with("/health/live", None).await;
    assert_eq!(r.status(), 200);
    let r = server.get_with("/openapi.json", None).await;
    assert_eq!(r.status(), 200);
    let doc: Value = r.json().await.unwrap();
    assert!(doc["paths"]["/v1/chat/completions"].is_object());
    server.shutdown().await;
}
