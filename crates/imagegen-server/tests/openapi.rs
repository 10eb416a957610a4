//! `GET /openapi.json`: the gateway's OpenAPI document, served without a key, describes
//! every route with its methods, and every reference in it resolves.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use serde_json::Value;

/// Every route and its methods, as the document names them.
const ROUTES: [(&str, &[&str]); 10] = [
    ("/v1/images/generations", &["post"]),
    ("/v1/estimate", &["post"]),
    ("/v1/generations", &["post"]),
    ("/v1/generations/{id}", &["get"]),
    ("/v1/generations/{id}/events", &["get"]),
    ("/v1/spend", &["get"]),
    ("/v1/models", &["get"]),
    ("/v1/models/{id}", &["get"]),
    ("/v1/files/{name}", &["get"]),
    ("/openapi.json", &["get"]),
];

/// Every `$ref` in `value`.
fn refs<'a>(value: &'a Value, found: &mut Vec<&'a str>) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                match (key.as_str(), inner) {
                    ("$ref", Value::String(target)) => found.push(target),
                    _ => refs(inner, found),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|inner| refs(inner, found)),
        _ => {}
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_document_describes_every_route() {
    let gateway = common::start().await;
    // No key, no bearer token: the document is public.
    let response = gateway
        .http
        .get(gateway.url("/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let doc = common::json(response).await;

    assert!(doc["openapi"].as_str().unwrap().starts_with("3."), "{doc}");
    assert_eq!(doc["info"]["title"], "imagegen gateway");
    assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
    assert!(doc.get("servers").is_none());

    let paths = doc["paths"].as_object().unwrap();
    for (path, methods) in ROUTES {
        let item = paths
            .get(path)
            .unwrap_or_else(|| panic!("{path} is missing"));
        for method in methods {
            let operation = &item[*method];
            assert!(operation.is_object(), "{method} {path} is missing");
            assert!(
                operation["responses"]
                    .as_object()
                    .is_some_and(|r| !r.is_empty()),
                "{method} {path} has no responses"
            );
        }
    }
    assert_eq!(paths.len(), ROUTES.len(), "{:?}", paths.keys());

    // Every reference resolves inside components.schemas.
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    let mut found = Vec::new();
    refs(&doc, &mut found);
    assert!(!found.is_empty());
    for target in found {
        let name = target
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("{target} is not a schema reference"));
        assert!(schemas.contains_key(name), "{target} does not resolve");
    }

    // The generation's errors, in OpenAI's shape.
    let generate = &doc["paths"]["/v1/images/generations"]["post"];
    for status in ["200", "400", "401", "429"] {
        assert!(
            generate["responses"][status].is_object(),
            "{status} is not documented"
        );
    }
    assert_eq!(
        generate["responses"]["400"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/ErrorResponse"
    );
    assert_eq!(
        generate["requestBody"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/ImagesRequest"
    );

    // The bearer scheme, optional (a gateway without keys takes none).
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    let security = generate["security"].as_array().unwrap();
    assert!(security.iter().any(|s| s.get("bearer").is_some()));
    assert!(
        security
            .iter()
            .any(|s| s.as_object().is_some_and(|o| o.is_empty()))
    );

    gateway.server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_document_keeps_the_host_check_of_a_gateway_without_keys() {
    let gateway = common::start().await;
    assert!(!gateway.server.requires_keys());
    let refused = gateway
        .http
        .get(gateway.url("/openapi.json"))
        .header("host", "evil.example")
        .send()
        .await
        .unwrap();
    let (status, body, _) = common::error_of(refused).await;
    assert_eq!(status, 403, "{body}");
    gateway.server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_document_needs_no_key_when_the_gateway_has_keys() {
    use imagegen_ledger::api_keys::{ApiKey, NewApiKey};

    let gateway = common::start().await;
    let key = ApiKey::generate().unwrap();
    gateway
        .server
        .ledger()
        .create_api_key(&NewApiKey::new("docs", &key))
        .await
        .unwrap();
    // The models need the key now…
    let models = gateway
        .http
        .get(gateway.url("/v1/models"))
        .send()
        .await
        .unwrap();
    let (status, body, _) = common::error_of(models).await;
    assert_eq!(status, 401, "{body}");
    assert!(gateway.server.requires_keys());
    // …the document does not.
    let doc = gateway
        .http
        .get(gateway.url("/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(doc.status(), 200);
    assert!(common::json(doc).await["paths"].is_object());
    gateway.server.shutdown().await.unwrap();
}
