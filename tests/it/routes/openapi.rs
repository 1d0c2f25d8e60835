//! The OpenAPI document: well-formed, every `$ref` resolves, snapshot-tested
//! whole, and every documented operation is served.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::harness::TestApp;

fn document_routes(doc: &Value) -> BTreeSet<(String, String)> {
    doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, ops)| {
            ops.as_object()
                .unwrap()
                .keys()
                .filter(|m| ["get", "post", "patch", "delete", "put"].contains(&m.as_str()))
                .map(move |m| (m.clone(), path.clone()))
        })
        .collect()
}

fn refs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                if k == "$ref" {
                    out.push(v.as_str().unwrap().to_owned());
                }
                refs(v, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_document_lists_every_route_and_nothing_else() {
    let app = TestApp::spawn().await;
    let (status, doc) = app.get("/openapi.json", None).await;
    assert_eq!(status, 200);
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    // Every operation documents its answers, errors as problem+json.
    for (method, path) in document_routes(&doc) {
        let op = &doc["paths"][&path][&method];
        let responses = op["responses"]
            .as_object()
            .unwrap_or_else(|| panic!("{method} {path}: no responses"));
        assert!(!responses.is_empty(), "{method} {path}");
        for (code, response) in responses {
            if code.starts_with('4') || code.starts_with('5') {
                assert!(
                    response["content"]["application/problem+json"].is_object(),
                    "{method} {path} {code} is not a problem"
                );
            }
        }
    }
    // Parameters are where they are sent: a path parameter is in the
    // template, everything else (filters, `limit`, `cursor`) is a query or
    // header parameter; and every operation has an id of its own.
    let mut ids = BTreeSet::new();
    for (method, path) in document_routes(&doc) {
        let op = &doc["paths"][&path][&method];
        let id = op["operationId"].as_str().unwrap_or_default().to_owned();
        assert!(
            ids.insert(id.clone()),
            "{method} {path}: operationId {id:?} repeats"
        );
        for param in op["parameters"].as_array().into_iter().flatten() {
            let name = param["name"].as_str().unwrap();
            let in_template = path.contains(&format!("{{{name}}}"));
            match param["in"].as_str().unwrap() {
                "path" => assert!(in_template, "{method} {path}: {name} is not in the path"),
                _ => assert!(!in_template, "{method} {path}: {name} is in the path"),
            }
        }
    }
    let search = &doc["paths"]["/v1/events"]["get"]["parameters"];
    let limit = search
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "limit")
        .expect("the search documents limit");
    assert_eq!(
        (limit["in"].as_str(), limit["required"].as_bool()),
        (Some("query"), Some(false))
    );
    // Only validation errors carry `errors`.
    let problem = &doc["components"]["schemas"]["Problem"];
    let required: Vec<&str> = problem["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(!required.contains(&"errors"), "{required:?}");
    // What every JSON endpoint can answer besides its own errors.
    let register = &doc["paths"]["/v1/auth/register"]["post"]["responses"];
    for code in ["400", "415", "422", "429"] {
        assert!(register[code].is_object(), "register documents {code}");
    }

    let mut all = Vec::new();
    refs(&doc, &mut all);
    for r in all {
        let name = r
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("odd ref {r}"));
        assert!(
            doc["components"]["schemas"][name].is_object(),
            "dangling {r}"
        );
    }

    // The router registers every API route from its annotation, so the
    // document lists what is served; a change to it shows here in review.
    insta::assert_snapshot!(serde_json::to_string_pretty(&doc).unwrap());
    let documented = document_routes(&doc);
    assert!(documented.len() > 45, "{} operations", documented.len());

    // And the running app answers every documented operation with something
    // other than "no such route" or "method not allowed".
    for (method, path) in &documented {
        let concrete = path
            .replace("{id}", "00000000-0000-7000-8000-000000000000")
            .replace("{tier_id}", "00000000-0000-7000-8000-000000000000")
            .replace("{image_id}", "00000000-0000-7000-8000-000000000000")
            .replace("{queue}", "emails")
            .replace("{code}", "CODE")
            .replace("{provider}", "sandbox")
            .replace("{key}", "events/x/y.png");
        let response = app
            .client
            .request(method.to_uppercase().parse().unwrap(), app.url(&concrete))
            .timeout(std::time::Duration::from_secs(5))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        if status == 404 || status == 405 {
            let body: Value = response.json().await.unwrap_or(Value::Null);
            assert_ne!(body["code"], "no_route", "{method} {concrete}");
            assert_ne!(body["code"], "method_not_allowed", "{method} {concrete}");
        }
    }
    // The fallback is told apart from a missing resource.
    let (status, problem) = app.get("/v1/nothing-here", None).await;
    assert_eq!((status, problem["code"].as_str()), (404, Some("no_route")));

    // Swagger UI, from the binary.
    let docs = app.client.get(app.url("/docs")).send().await.unwrap();
    assert_eq!(docs.status(), 200);
    let html = docs.text().await.unwrap();
    assert!(html.contains("/docs/swagger-ui-bundle.js") && !html.contains("https://"));
    let bundle = app
        .client
        .get(app.url("/docs/swagger-ui-bundle.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(bundle.status(), 200);
    assert!(bundle.bytes().await.unwrap().len() > 1_000_000);
}

/// POST and PATCH of events and tiers share one body; the document gives
/// POST its own schema, with what a new one needs required. Checked against
/// the API: an empty body is refused for exactly those fields, a `null`
/// one as if absent (the schema does not allow it), and PATCH takes `{}`.
#[tokio::test(flavor = "multi_thread")]
async fn what_a_new_event_or_tier_requires_is_what_the_document_says() {
    let app = TestApp::spawn().await;
    let (_, doc) = app.get("/openapi.json", None).await;
    let body_schema = |path: &str, method: &str| -> &Value {
        let reference = doc["paths"][path][method]["requestBody"]["content"]["application/json"]
            ["schema"]["$ref"]
            .as_str()
            .unwrap_or_else(|| panic!("{method} {path}: no body"));
        &doc["components"]["schemas"][reference.rsplit('/').next().unwrap()]
    };
    let organizer = app.organizer("req@example.com").await;
    let event = app.create_event(&organizer, json!({})).await;
    let event_id = event["id"].as_str().unwrap();
    let tier = app.create_tier(&organizer, event_id, json!({})).await;
    let cases = [
        (
            "/v1/events".to_owned(),
            "/v1/events",
            format!("/v1/events/{event_id}"),
            "/v1/events/{id}",
        ),
        (
            format!("/v1/events/{event_id}/tiers"),
            "/v1/events/{id}/tiers",
            format!(
                "/v1/events/{event_id}/tiers/{}",
                tier["id"].as_str().unwrap()
            ),
            "/v1/events/{id}/tiers/{tier_id}",
        ),
    ];
    for (post, post_doc, patch, patch_doc) in cases {
        let schema = body_schema(post_doc, "post");
        let documented: BTreeSet<&str> = schema["required"]
            .as_array()
            .unwrap_or_else(|| panic!("{post_doc}: nothing required in {schema}"))
            .iter()
            .map(|f| f.as_str().unwrap())
            .collect();
        for field in &documented {
            assert!(
                schema["properties"][field]["type"].is_string(),
                "{post_doc}: `{field}` is required, so not nullable: {schema}"
            );
        }
        let nulls: serde_json::Map<String, Value> = documented
            .iter()
            .map(|f| ((*f).to_owned(), Value::Null))
            .collect();
        for body in [json!({}), Value::Object(nulls)] {
            let (status, problem) = app.post(&post, body.clone(), Some(&organizer)).await;
            assert_eq!(status, 422, "{post} {body}: {problem}");
            let refused: BTreeSet<&str> = problem["errors"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|e| e["message"] == "is required")
                .map(|e| e["field"].as_str().unwrap())
                .collect();
            assert_eq!(refused, documented, "{post} {body}");
        }
        // PATCH documents the shared body, nothing required, and means it.
        assert!(body_schema(patch_doc, "patch")["required"].is_null());
        let (status, answer) = app.patch(&patch, json!({}), Some(&organizer)).await;
        assert_eq!(status, 200, "{patch}: {answer}");
    }
    for table in ["events", "ticket_tiers"] {
        assert_eq!(
            app.scalar(&format!("SELECT count(*) AS n FROM {table}"))
                .await,
            1,
            "refused bodies wrote no {table}"
        );
    }
}
