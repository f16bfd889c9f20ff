//! An Anthropic Messages client over the test server, and checks of the
//! shapes only that API has (its error envelope, its additive usage).

use serde_json::Value;

use super::{json_error_body, TestServer};

impl TestServer {
    /// `POST /v1/messages`.
    pub async fn messages(&self, body: &Value) -> reqwest::Response {
        self.post_json("/v1/messages", body, None).await
    }

    /// A non-streaming message that must succeed, as `agent` if given.
    pub async fn message_ok(&self, body: &Value, agent: Option<&str>) -> Value {
        let response = self.post_json("/v1/messages", body, agent).await;
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }

    /// `count_tokens` for `body` (its sampling fields are ignored there).
    pub async fn count_tokens(&self, body: &Value) -> u64 {
        let response = self
            .post_json("/v1/messages/count_tokens", body, None)
            .await;
        assert_eq!(response.status(), 200);
        let count: Value = response.json().await.unwrap();
        assert_eq!(count.as_object().unwrap().len(), 1, "{count}");
        count["input_tokens"].as_u64().unwrap()
    }
}

/// `usage[key]`, which must be a count.
pub fn usage_count(usage: &Value, key: &str) -> u64 {
    usage[key]
        .as_u64()
        .unwrap_or_else(|| panic!("usage.{key} missing: {usage}"))
}

/// `input_tokens + cache_read + cache_creation`: the whole prompt.
pub fn total_input(usage: &Value) -> u64 {
    usage_count(usage, "input_tokens")
        + usage_count(usage, "cache_read_input_tokens")
        + usage_count(usage, "cache_creation_input_tokens")
}

/// Assert an Anthropic error: status, a JSON `{"type": "error", "error":
/// {"type", "message"}}` with nothing more, and every message part.
pub async fn assert_anthropic_error(
    response: reqwest::Response,
    status: u16,
    kind: &str,
    parts: &[&str],
) {
    let body = json_error_body(response, status).await;
    assert_eq!(body["type"], "error", "{body}");
    assert_eq!(body["error"]["type"], kind, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    for part in parts {
        assert!(message.contains(part), "message {message:?} lacks {part:?}");
    }
    assert_eq!(body["error"].as_object().unwrap().len(), 2, "{body}");
}
