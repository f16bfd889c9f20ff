//! `GET /openapi.json`: the API description, written by hand in
//! `openapi.json` next to this file (our wire types are plain serde types,
//! and a static document keeps the schemas readable). A test checks that
//! every path the router serves is described, so a route cannot be added
//! without its documentation.

use axum::http::header;
use axum::response::IntoResponse;

/// The OpenAPI 3.1 document, served as written.
pub const DOCUMENT: &str = include_str!("openapi.json");

/// `GET /openapi.json` (no key needed).
pub async fn document() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], DOCUMENT)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    /// Every literal path given to `.route(` anywhere in this crate's sources.
    fn routed_paths() -> Vec<String> {
        let mut files = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("src")];
        let mut paths = Vec::new();
        while let Some(entry) = files.pop() {
            if entry.is_dir() {
                for child in std::fs::read_dir(&entry).unwrap() {
                    files.push(child.unwrap().path());
                }
                continue;
            }
            if entry.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let text = std::fs::read_to_string(&entry).unwrap();
            // Routers built inside unit tests are not served.
            let served = text.split("#[cfg(test)]").next().unwrap_or_default();
            // `.route(` split across lines by rustfmt keeps the literal next.
            for piece in served.split(".route(").skip(1) {
                let literal = piece.trim_start().strip_prefix('"');
                let path = literal.and_then(|l| l.split('"').next());
                if let Some(path) = path.filter(|p| p.starts_with('/')) {
                    paths.push(path.to_owned());
                }
            }
        }
        paths
    }

    #[test]
    fn every_routed_path_is_documented() {
        let doc: serde_json::Value = serde_json::from_str(DOCUMENT).unwrap();
        let documented = doc["paths"].as_object().unwrap();
        let routed = routed_paths();
        assert!(
            routed.contains(&"/v1/chat/completions".to_owned()),
            "{routed:?}"
        );
        let missing: Vec<_> = routed
            .iter()
            .filter(|p| !documented.contains_key(p.as_str()))
            .collect();
        assert!(
            missing.is_empty(),
            "routes missing from openapi.json: {missing:?}"
        );
    }

    #[test]
    fn every_operation_has_responses_and_refs_resolve() {
        let doc: serde_json::Value = serde_json::from_str(DOCUMENT).unwrap();
        for (path, ops) in doc["paths"].as_object().unwrap() {
            for (method, op) in ops.as_object().unwrap() {
                assert!(op["responses"].is_object(), "{method} {path}");
            }
        }
        let text = DOCUMENT;
        for piece in text.split("\"$ref\": \"#/components/").skip(1) {
            let pointer = piece.split('"').next().unwrap();
            let target = doc.pointer(&format!("/components/{pointer}"));
            assert!(target.is_some(), "dangling $ref {pointer}");
        }
    }
}
