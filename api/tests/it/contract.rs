//! The OpenAPI document against the router, and the input rules every body and query shares.
//! (scripts/api-contract fuzzes every operation against the document with schemathesis.)

use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_error};

/// A documented path with its parameters filled in.
fn concrete(path: &str) -> String {
    path.split('/')
        .map(|seg| match seg {
            "{eventKey}" => "no-such-event",
            s if s.starts_with('{') => "987654",
            s => s,
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[tokio::test]
async fn every_documented_operation_is_routed_and_described() {
    let app = TestApp::spawn().await;
    let r = app.get("/openapi.json", None).await;
    assert_eq!(r.status(), 200);
    let doc: Value = r.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    let responses = doc["components"]["responses"].as_object().unwrap();

    let mut operations = 0;
    let mut ids = std::collections::BTreeMap::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            operations += 1;
            let name = format!("{} {path}", method.to_uppercase());
            let id = op["operationId"].as_str().unwrap().to_owned();
            let params: Vec<String> = op["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|p| p["name"].as_str().unwrap().to_owned())
                .collect();
            assert!(ids.insert(id, params).is_none(), "{name}: operationId not unique");
            let described = op["responses"].as_object().unwrap();
            assert!(
                described.keys().any(|s| s.starts_with('2')),
                "{name}: no success response"
            );
            for (status, response) in described {
                let response = match response["$ref"].as_str() {
                    Some(r) => &responses[r.trim_start_matches("#/components/responses/")],
                    None => response,
                };
                if !status.starts_with('2') && path != "/ready" {
                    assert_eq!(
                        response["content"]["application/json"]["schema"]["$ref"],
                        "#/components/schemas/ErrorBody",
                        "{name} {status}: errors answer the error body"
                    );
                }
            }
            // The route exists with this method: neither the router's 404 nor a 405.
            let url = app.url(&concrete(path));
            let req = app
                .http
                .request(method.to_uppercase().parse().unwrap(), &url)
                .bearer_auth(app.admin());
            let req = match method.as_str() {
                "post" | "put" | "patch" => req.json(&json!({})),
                _ => req,
            };
            let r = req.send().await.unwrap();
            let status = r.status().as_u16();
            let body = r.text().await.unwrap_or_default();
            assert_ne!(status, 405, "{name}: method not routed");
            assert!(
                !(status == 404 && body.contains("\"code\":\"NOT_FOUND\"")),
                "{name}: path not routed"
            );
            assert!(status < 500, "{name}: {status} {body}");
        }
    }
    assert!(operations >= 60, "only {operations} operations documented");

    // Every link leads to an operation, into one of its parameters.
    let mut links = 0;
    for item in doc["paths"].as_object().unwrap().values() {
        for op in item.as_object().unwrap().values() {
            for response in op["responses"].as_object().unwrap().values() {
                for link in response["links"].as_object().into_iter().flat_map(|l| l.values()) {
                    links += 1;
                    let target = &ids[link["operationId"].as_str().unwrap()];
                    for param in link["parameters"].as_object().unwrap().keys() {
                        assert!(target.contains(param), "link into unknown parameter {param}");
                    }
                }
            }
        }
    }
    assert!(links >= 20, "only {links} links");

    // Every reference resolves.
    let text = doc.to_string();
    for piece in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
        let name = piece.split('"').next().unwrap();
        assert!(schemas.contains_key(name), "dangling schema reference {name}");
    }
}

#[tokio::test]
async fn the_docs_page_is_served_from_the_binary() {
    let app = TestApp::spawn().await;
    // `/docs` leads to the page (reqwest follows the redirect to `/docs/`).
    let r = app.get("/docs", None).await;
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let page = r.text().await.unwrap();
    assert!(page.contains("swagger-ui"), "{page}");
    // Its scripts come from this server, not a CDN, and it reads this document.
    assert!(!page.contains("https://"), "no asset from another host: {page}");
    let init = app
        .get("/docs/swagger-initializer.js", None)
        .await
        .text()
        .await
        .unwrap();
    assert!(init.contains("/openapi.json"), "{init}");
    let bundle = app.get("/docs/swagger-ui-bundle.js", None).await;
    assert_eq!(bundle.status(), 200);
    assert!(bundle.bytes().await.unwrap().len() > 100_000, "the viewer itself");
}

#[tokio::test]
async fn text_with_nul_and_bodies_that_are_not_objects_are_refused() {
    let app = TestApp::spawn().await;
    let users = "/api/v1/admin/users";
    let r = app.post(users, &app.admin(), &json!({"name": "a\u{0}b"})).await;
    assert_error(r, 400, "INVALID_REQUEST", users).await;
    assert_eq!(app.admin_get(users).await["totalElements"], 0, "nothing written");
    // An escaped backslash before `u0000` is text, not NUL.
    app.admin_post(users, &json!({"name": "back\\u0000slash"}), 201)
        .await;

    let inventories = "/api/v1/admin/coupon-inventories";
    let r = app
        .get(&format!("{inventories}?keyword=a%00b"), Some(&app.admin()))
        .await;
    assert_error(r, 400, "INVALID_REQUEST", inventories).await;

    app.create_event("open", 10, None).await;
    let tickets = "/events/open/tickets";
    let r = app.post(tickets, &app.user(7), &json!([7])).await;
    assert_error(r, 400, "INVALID_REQUEST", tickets).await;
    assert_eq!(app.ticket_rows("open").await, 0);
    let r = app
        .http
        .post(app.url(tickets))
        .bearer_auth(app.user(7))
        .body(r#"{"userId":7}"#)
        .send()
        .await
        .unwrap();
    assert_error(r, 400, "INVALID_REQUEST", tickets).await;
}

/// Dates Postgres (or RFC 3339) cannot hold, and numbers at and past every integer width.
const EXTREME_DATES: &[&str] = &[
    "-5000-01-01T00:00:00Z",
    "+300000-01-01T00:00:00Z",
    "300000-01-01T00:00:00",
    "-5000-01-01T00:00:00",
    "0000-01-01T00:00:00Z",
    "9999-12-31T23:59:59-09:00",
    "-5000-01-01",
    "300000-01-01",
];

fn extreme_numbers() -> Vec<Value> {
    vec![
        json!(i64::MAX),
        json!(i64::MIN),
        json!(i64::from(i32::MAX) + 1),
        json!(i64::from(i32::MIN) - 1),
        json!(1e300),
        json!(-1),
        json!(0),
    ]
}

/// The schema behind a `$ref` (or the schema itself).
fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(r) => &doc["components"]["schemas"][r.trim_start_matches("#/components/schemas/")],
        None => schema,
    }
}

/// One request of the sweep: path, query, body.
type Case = (String, Vec<(String, String)>, Value);

fn is_date(name: &str, schema: &Value) -> bool {
    matches!(schema["format"].as_str(), Some("date-time" | "date"))
        || matches!(name, "from" | "to")
        || (name.ends_with("At") && schema["type"] == "string")
}

fn is_number(schema: &Value) -> bool {
    let t = &schema["type"];
    t == "integer" || t.as_array().is_some_and(|ts| ts.contains(&json!("integer")))
}

/// Every operation, with every date field and every number (body, query, path) set to values no
/// column can hold: never a 5xx, always the error body.
#[tokio::test]
async fn extreme_dates_and_numbers_are_refused_never_5xx() {
    let app = TestApp::spawn().await;
    let doc: Value = app.get("/openapi.json", None).await.json().await.unwrap();
    let mut sent = 0;
    let mut failures = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let body_schema = resolve(&doc, &op["requestBody"]["content"]["application/json"]["schema"]);
            let example = if body_schema["example"].is_object() {
                body_schema["example"].clone()
            } else {
                json!({})
            };
            let mut cases: Vec<Case> = Vec::new();
            // Body fields.
            for (field, schema) in body_schema["properties"].as_object().into_iter().flatten() {
                let schema = resolve(&doc, schema);
                let values: Vec<Value> = if is_date(field, schema) {
                    EXTREME_DATES.iter().map(|d| json!(d)).collect()
                } else if is_number(schema) {
                    extreme_numbers()
                } else {
                    continue;
                };
                for v in values {
                    let mut body = example.clone();
                    body[field] = v;
                    cases.push((concrete(path), vec![], body));
                }
            }
            for param in op["parameters"].as_array().into_iter().flatten() {
                let name = param["name"].as_str().unwrap();
                let schema = resolve(&doc, &param["schema"]);
                let values: Vec<String> = if is_date(name, schema) {
                    EXTREME_DATES.iter().map(|d| (*d).to_owned()).collect()
                } else if is_number(schema) {
                    let mut v: Vec<String> = extreme_numbers().iter().map(Value::to_string).collect();
                    v.push("99999999999999999999999".into());
                    v
                } else {
                    continue;
                };
                for v in values {
                    match param["in"].as_str() {
                        Some("query") => {
                            cases.push((concrete(path), vec![(name.to_owned(), v)], example.clone()))
                        }
                        Some("path") => {
                            let p = path.replace(&format!("{{{name}}}"), &v);
                            cases.push((concrete(&p), vec![], example.clone()));
                        }
                        _ => {}
                    }
                }
            }
            for (url, query, body) in cases {
                let req = app
                    .http
                    .request(method.to_uppercase().parse().unwrap(), app.url(&url))
                    .query(&query)
                    .bearer_auth(app.admin());
                let req = match method.as_str() {
                    "post" | "put" | "patch" => req.json(&body),
                    _ => req,
                };
                let r = req.send().await.unwrap();
                sent += 1;
                let status = r.status().as_u16();
                let text = r.text().await.unwrap_or_default();
                if status >= 500 || (status >= 400 && !text.contains("\"code\"")) {
                    failures.push(format!(
                        "{} {url} {query:?} {body} -> {status} {text}",
                        method.to_uppercase()
                    ));
                }
            }
        }
    }
    assert!(sent > 500, "only {sent} requests");
    assert!(
        failures.is_empty(),
        "{} of {sent}:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
