//! The machine-readable contract against the running server: the OpenAPI document at
//! /api/v1/openapi.json and the page at /api that renders it with the socket frames'
//! schema (docs/protocol.md, "Machine-readable contract"; the frames: socket_frames.rs).

use crate::helpers::*;
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::BTreeSet;

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

pub async fn fetch_json(app: &TestApp, path: &str) -> (String, Value) {
    let r = app
        .client
        .get(format!("{}{path}", app.base))
        .send()
        .await
        .expect("the request is sent");
    assert_eq!(r.status(), 200, "GET {path}");
    let ct = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let body = r.text().await.expect("a body");
    let v = serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: not JSON: {e}"));
    (ct, v)
}

pub async fn openapi(app: &TestApp) -> Value {
    fetch_json(app, "/api/v1/openapi.json").await.1
}

/// Every (path, method) the document lists.
fn operations(doc: &Value) -> BTreeSet<(String, String)> {
    let paths = doc["paths"].as_object().expect("paths");
    paths
        .iter()
        .flat_map(|(path, item)| {
            METHODS
                .iter()
                .filter(|m| item.get(**m).is_some())
                .map(|m| (path.clone(), m.to_string()))
        })
        .collect()
}

/// Every `$ref` in `v`.
fn refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                match (k.as_str(), child) {
                    ("$ref", Value::String(r)) => out.push(r.clone()),
                    _ => refs(child, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|c| refs(c, out)),
        _ => {}
    }
}

/// A JSON Schema for `schema` (an OpenAPI 3.1 schema object, i.e. JSON Schema 2020-12)
/// with the document's components as `$defs`.
fn validator(doc: &Value, schema: &Value) -> jsonschema::Validator {
    let text = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$defs": doc["components"]["schemas"],
        "allOf": [schema],
    })
    .to_string()
    .replace("#/components/schemas/", "#/$defs/");
    jsonschema::validator_for(&serde_json::from_str(&text).unwrap()).expect("a valid schema")
}

#[track_caller]
pub fn assert_valid(v: &jsonschema::Validator, instance: &Value, what: &str) {
    let errors: Vec<String> = v.iter_errors(instance).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{what}: {errors:?}\n{instance}");
}

#[actix_web::test]
async fn the_document_is_openapi_3_1_with_every_reference_resolved() {
    let app = spawn_app(|_| {}).await;
    let (ct, doc) = fetch_json(&app, "/api/v1/openapi.json").await;
    assert!(ct.starts_with("application/json"), "{ct}");
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1."),
        "{}",
        doc["openapi"]
    );
    assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(doc["servers"][0]["url"], "/");
    assert!(doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer");
    let schemas = doc["components"]["schemas"].as_object().expect("schemas");
    for name in [
        "ErrorBody",
        "Order",
        "RiderView",
        "Escalation",
        "RiderNotice",
    ] {
        assert!(schemas.contains_key(name), "no schema {name}");
    }
    let mut all = Vec::new();
    refs(&doc, &mut all);
    assert!(all.len() > 50, "a document this size refers to its schemas");
    for r in all {
        let name = r
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("{r}"));
        assert!(schemas.contains_key(name), "dangling reference {r}");
    }
    // operationId is unique in a valid document.
    let mut ids = BTreeSet::new();
    for (path, method) in operations(&doc) {
        let id = doc["paths"][&path][&method]["operationId"]
            .as_str()
            .unwrap();
        assert!(ids.insert(id.to_string()), "operationId {id} twice");
        let op = &doc["paths"][&path][&method];
        assert!(
            !op["responses"].as_object().unwrap().is_empty(),
            "{method} {path}"
        );
    }
    // Every error answer has the one error shape; only a browser page answers its own
    // status (`/s/{token}` for a dead link) with the page itself, as HTML.
    let error_schema = json!({"$ref": "#/components/schemas/ErrorBody"});
    for (path, method) in operations(&doc) {
        let op = &doc["paths"][&path][&method];
        for (status, r) in op["responses"].as_object().unwrap() {
            if status.starts_with('4') || status.starts_with('5') {
                if op["tags"] == json!(["pages"]) && r["content"]["application/json"].is_null() {
                    assert!(
                        r["content"]["text/html"].is_object(),
                        "{method} {path} {status}"
                    );
                    continue;
                }
                let s = &r["content"]["application/json"]["schema"];
                assert_eq!(s, &error_schema, "{method} {path} {status}");
            }
        }
    }
}

/// Whether the router had no route for a request: its JSON 404 `no such route`, or 405.
fn not_routed(status: u16, body: &Value) -> bool {
    let message = body["error"]["message"].as_str().unwrap_or_default();
    status == 405 || (status == 404 && message.starts_with("no such route"))
}

/// Whether the documented path `template` matches the concrete segments of `path` (a
/// `{parameter}` segment matches any one segment; `path` has none of its own).
fn template_matches(template: &str, path: &str) -> bool {
    let (t, p): (Vec<&str>, Vec<&str>) = (template.split('/').collect(), path.split('/').collect());
    !path.contains('{')
        && t.len() == p.len()
        && t.iter().zip(&p).all(|(t, p)| t.starts_with('{') || t == p)
}

async fn probe(app: &TestApp, method: &str, path: &str) -> (u16, Value) {
    // Path parameters get a value of the right shape for no object that exists: a
    // handler answers (401, 404 "order …", …), the router has matched.
    let mut concrete = String::new();
    let mut rest = path;
    while let Some(open) = rest.find('{') {
        let close = rest[open..].find('}').expect("closed parameter") + open;
        concrete.push_str(&rest[..open]);
        concrete.push_str("x_probe");
        rest = &rest[close + 1..];
    }
    concrete.push_str(rest);
    let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
    let mut rb = app
        .client
        .request(method.clone(), format!("{}{concrete}", app.base));
    if method != Method::GET && method != Method::DELETE {
        rb = rb.header("content-type", "application/json").body("{}");
    }
    let r = rb.send().await.expect("the request is sent");
    let status = r.status().as_u16();
    let body = serde_json::from_str(&r.text().await.unwrap_or_default()).unwrap_or(Value::Null);
    (status, body)
}

#[actix_web::test]
async fn every_documented_route_is_served_and_every_served_method_is_documented() {
    let app = spawn_app(|_| {}).await;
    let doc = openapi(&app).await;
    let ops = operations(&doc);
    // The classifier tells a missing route when it sees one.
    let (status, body) = probe(&app, "get", "/api/v1/no-such-thing").await;
    assert!(not_routed(status, &body), "{status} {body}");
    let (status, body) = probe(&app, "delete", "/api/v1/riders").await;
    assert!(not_routed(status, &body), "{status} {body}");

    for (path, method) in &ops {
        let (status, body) = probe(&app, method, path).await;
        assert!(
            !not_routed(status, &body),
            "documented {method} {path} is not served: {status} {body}"
        );
    }
    // On each documented path, a method the document does not list is not served either:
    // the router has no operation the document lacks. The one exception is the document's
    // own: a path that another documented path's template also matches with that method
    // (`DELETE /webhooks/dead-letters` is `DELETE /webhooks/{id}` with the id
    // `dead-letters`) is served by that operation.
    let paths: BTreeSet<&String> = ops.iter().map(|(p, _)| p).collect();
    for path in paths {
        for method in METHODS {
            if ops.contains(&(path.clone(), method.to_string())) {
                continue;
            }
            let (status, body) = probe(&app, method, path).await;
            let template = ops
                .iter()
                .find(|(p, m)| m == method && p != path && template_matches(p, path));
            if let Some((template, _)) = template {
                assert!(
                    !not_routed(status, &body),
                    "{method} {path} is not served by {method} {template}: {status} {body}"
                );
                continue;
            }
            assert!(
                not_routed(status, &body),
                "{method} {path} is served ({status} {body}) but not documented"
            );
        }
    }
    // The one thing served outside the document, and said so in it: the static assets.
    let css = app
        .client
        .get(format!("{}/static/app.css", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(css.status(), 200);
    assert!(doc["info"]["description"]
        .as_str()
        .unwrap()
        .contains("/static"));
}

/// The body of `fn name(` in `source`, up to the closing brace at the start of a line.
fn fn_body<'a>(source: &'a str, name: &str) -> &'a str {
    let start = source.find(name).unwrap_or_else(|| panic!("no {name}"));
    let end = source[start..].find("\n}\n").expect("the function ends") + start;
    &source[start..end]
}

#[actix_web::test]
async fn the_router_registers_nothing_the_document_does_not_see() {
    // actix-web cannot list its routes, so this reads their one registration: every route
    // of the main listener is a `service(handler)` through utoipa-actix-web, which puts the
    // handler's documented path into the document as it registers it. Anything else —
    // `.route(…)`, a resource, a scope of actix-web's own, another `map` — would serve
    // something the document cannot know about.
    let app = spawn_app(|_| {}).await;
    let doc = openapi(&app).await;
    let root = env!("CARGO_MANIFEST_DIR");
    let routes = std::fs::read_to_string(format!("{root}/src/routes/mod.rs")).unwrap();
    let register = fn_body(&routes, "pub fn register(");
    let fallback = "default_service(web::to(ops::not_found))";
    assert_eq!(register.matches(fallback).count(), 2, "{register}");
    let rest = register.replace(fallback, "");
    for forbidden in [".route(", "web::resource", "web::scope", ".to(", "Route::"] {
        assert!(!rest.contains(forbidden), "register() uses {forbidden}");
    }
    assert_eq!(rest.matches(".map(").count(), 1, "{register}");
    assert!(rest.contains(r#".map(|c| c.service(actix_files::Files::new("/static""#));
    // One `service` per documented operation, plus the /api/v1 scope and the static files.
    assert_eq!(
        rest.matches(".service(").count(),
        operations(&doc).len() + 2,
        "a service registered without its documentation, or twice"
    );
    // The main listener's app is exactly that registration.
    let startup = std::fs::read_to_string(format!("{root}/src/startup.rs")).unwrap();
    assert!(startup.contains(".configure(routes::configure)"));
    for forbidden in [".route(", ".service("] {
        assert!(!startup.contains(forbidden), "startup.rs registers a route");
    }
}

/// The documented schema of `method path` answering `status`.
fn response_schema<'a>(doc: &'a Value, path: &str, method: &str, status: u16) -> &'a Value {
    let s = &doc["paths"][path][method]["responses"][status.to_string()]["content"]
        ["application/json"]["schema"];
    assert!(!s.is_null(), "{method} {path} documents no {status} body");
    s
}

#[actix_web::test]
async fn real_answers_validate_against_their_documented_schemas() {
    let (app, customer, merchant) = spawn_shop(|_| {}).await;
    let doc = openapi(&app).await;
    let check = |path: &str, method: &str, r: Resp| {
        let schema = response_schema(&doc, path, method, r.status.as_u16());
        assert_valid(
            &validator(&doc, schema),
            &r.body,
            &format!("{method} {path} {}", r.status),
        );
        r.body
    };
    let d = Some(app.dispatcher.as_str());
    let user = unique("openapi");
    check(
        "/api/v1/customers",
        "post",
        app.register(&user, "pw-123456").await,
    );
    check(
        "/api/v1/sessions",
        "post",
        app.login(&user, "pw-123456").await,
    );
    check("/api/v1/sessions", "post", app.login(&user, "wrong").await);
    let created = check(
        "/api/v1/merchants",
        "post",
        app.post(
            "/merchants",
            d,
            &json!({"name": "Doc", "location": {"lat": SHOP.0, "lon": SHOP.1}}),
        )
        .await,
    );
    let mid = created["merchant_id"].as_str().unwrap();
    check(
        "/api/v1/merchants/{id}/items",
        "get",
        app.get(&format!("/merchants/{mid}/items"), None).await,
    );
    check(
        "/api/v1/merchants/{id}/open",
        "put",
        app.set_open(&merchant, true).await,
    );
    let rider = check(
        "/api/v1/riders",
        "post",
        app.post("/riders", d, &json!({"name": "R"})).await,
    );
    let rid = rider["rider_id"].as_str().unwrap();
    check("/api/v1/riders", "get", app.get("/riders", d).await);
    check(
        "/api/v1/riders/nearby",
        "get",
        app.get(&format!("/riders/nearby?lat={}&lon={}", SHOP.0, SHOP.1), d)
            .await,
    );
    check(
        "/api/v1/riders/nearby",
        "get",
        app.get("/riders/nearby?lat=95&lon=0", d).await,
    );
    check(
        "/api/v1/riders/{id}/devices",
        "post",
        app.post(&format!("/riders/{rid}/devices"), d, &json!({}))
            .await,
    );
    check(
        "/api/v1/riders/{id}/tokens",
        "post",
        app.post(&format!("/riders/{rid}/tokens"), d, &json!({}))
            .await,
    );
    check(
        "/api/v1/riders/{id}/tokens",
        "delete",
        app.call(
            Method::DELETE,
            &format!("/riders/{rid}/tokens"),
            d,
            &json!({}),
            &[],
        )
        .await,
    );
    let order = app.placed_order(&customer, &merchant).await;
    check(
        "/api/v1/orders/{id}",
        "get",
        app.get(&format!("/orders/{order}"), Some(&customer.token))
            .await,
    );
    check(
        "/api/v1/orders/{id}",
        "get",
        app.get(&format!("/orders/{order}"), Some(&merchant.token))
            .await,
    );
    check(
        "/api/v1/orders/{id}",
        "get",
        app.get("/orders/o_missing", d).await,
    );
    check(
        "/api/v1/orders/{id}/pay",
        "post",
        app.post_with_key(
            &format!("/orders/{order}/pay"),
            &customer.token,
            "k1",
            &json!({"payment_ref": "p"}),
        )
        .await,
    );
    check(
        "/api/v1/orders/{id}/accept",
        "post",
        app.post(
            &format!("/orders/{order}/accept"),
            Some(&merchant.token),
            &json!({}),
        )
        .await,
    );
    check(
        "/api/v1/orders/{id}/trace",
        "get",
        app.get(&format!("/orders/{order}/trace"), d).await,
    );
    check(
        "/api/v1/orders/{id}/cancel",
        "post",
        app.post(
            &format!("/orders/{order}/cancel"),
            d,
            &json!({"reason": "test"}),
        )
        .await,
    );
    check(
        "/api/v1/escalations",
        "get",
        app.get("/escalations?open=true", d).await,
    );
    check("/healthz", "get", app.get("/healthz", None).await);
    check("/readyz", "get", app.get("/readyz", None).await);
}

/// `r`'s body, once it validates against what the document says `method path` answers
/// with its status.
fn checked(doc: &Value, path: &str, method: &str, r: Resp) -> Value {
    let schema = response_schema(doc, path, method, r.status.as_u16());
    assert_valid(
        &validator(doc, schema),
        &r.body,
        &format!("{method} {path} {}", r.status),
    );
    r.body
}

#[actix_web::test]
async fn share_link_and_webhook_answers_validate_against_their_documented_schemas() {
    let (app, customer, merchant) = spawn_shop(|s| {
        s.webhooks.allow_private = true;
        s.webhooks.backoff_base_ms = 50;
        s.webhooks.backoff_max_ms = 200;
        s.webhooks.max_attempts = 1;
    })
    .await;
    let doc = openapi(&app).await;
    let d = Some(app.dispatcher.as_str());
    let c = Some(customer.token.as_str());

    // Webhooks: a receiver that fails, so the first event becomes a dead letter.
    let receiver = Receiver::start();
    receiver.fail_all(true);
    let hooks = "/api/v1/webhooks";
    let body = json!({"url": receiver.url(), "events": ["order.status_changed"]});
    let hook = checked(&doc, hooks, "post", app.post("/webhooks", d, &body).await);
    assert!(hook["secret"].is_string(), "{hook}");
    let bad = json!({"url": receiver.url(), "events": ["order.teleported"]});
    checked(&doc, hooks, "post", app.post("/webhooks", d, &bad).await);
    checked(&doc, hooks, "post", app.post("/webhooks", c, &body).await);
    let listed = checked(&doc, hooks, "get", app.get("/webhooks", d).await);
    assert_eq!(listed[0]["webhook_id"], hook["webhook_id"]);
    assert!(listed[0].get("secret").is_none(), "{listed}");
    let order = app.placed_order(&customer, &merchant).await;
    let dead_letters = "/api/v1/webhooks/dead-letters";
    wait_for("a dead letter", T, || async {
        let r = app.get("/webhooks/dead-letters", d).await;
        (r.body.as_array().map_or(0, Vec::len) == 1).then_some(())
    })
    .await;
    let dead = checked(
        &doc,
        dead_letters,
        "get",
        app.get("/webhooks/dead-letters", d).await,
    );
    let replay = "/api/v1/webhooks/dead-letters/{id}/replay";
    let delivery = dead[0]["delivery_id"].as_str().unwrap();
    let again = format!("/webhooks/dead-letters/{delivery}/replay");
    checked(&doc, replay, "post", app.post(&again, d, &json!({})).await);
    checked(&doc, replay, "post", app.post(&again, d, &json!({})).await);
    checked(
        &doc,
        "/api/v1/webhooks/{id}",
        "delete",
        app.call(Method::DELETE, "/webhooks/wh_missing", d, &json!({}), &[])
            .await,
    );

    // Share links, from creation to a dead link.
    let links = "/api/v1/orders/{id}/share-links";
    let links_of = format!("/orders/{order}/share-links");
    let new_link = json!({"ttl_s": 3600, "privacy": "status_and_position"});
    let link = checked(&doc, links, "post", app.post(&links_of, c, &new_link).await);
    let short = json!({"ttl_s": 1, "privacy": "status"});
    checked(&doc, links, "post", app.post(&links_of, c, &short).await);
    checked(&doc, links, "post", app.post(&links_of, d, &new_link).await);
    checked(&doc, links, "get", app.get(&links_of, c).await);
    checked(&doc, links, "get", app.get(&links_of, d).await);
    let shared = "/api/v1/shared";
    let token = link["token"].as_str().unwrap();
    let read = format!("/shared?token={token}");
    checked(&doc, shared, "get", app.get(&read, None).await);
    checked(
        &doc,
        shared,
        "get",
        app.get(&format!("/shared?token={}", "0".repeat(32)), None)
            .await,
    );
    let revoke = format!("{links_of}/{}", link["id"].as_str().unwrap());
    let r = app.call(Method::DELETE, &revoke, c, &json!({}), &[]).await;
    assert_eq!(r.status.as_u16(), 204, "{}", r.text);
    checked(&doc, shared, "get", app.get(&read, None).await);
    checked(
        &doc,
        "/api/v1/orders/{id}/share-links/{link_id}",
        "delete",
        app.call(
            Method::DELETE,
            &format!("{links_of}/sl_missing"),
            c,
            &json!({}),
            &[],
        )
        .await,
    );
}

#[actix_web::test]
async fn the_api_page_is_served_and_loads_nothing_from_elsewhere() {
    let app = spawn_app(|_| {}).await;
    let r = app
        .client
        .get(format!("{}/api", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let ct = r.headers()["content-type"].to_str().unwrap().to_string();
    assert!(ct.starts_with("text/html"), "{ct}");
    let html = r.text().await.unwrap();
    // Every src/href, and what each loads.
    let mut assets = Vec::new();
    for attr in ["src=\"", "href=\""] {
        for (i, _) in html.match_indices(attr) {
            let rest = &html[i + attr.len()..];
            let url = &rest[..rest.find('"').unwrap()];
            assert!(
                url.starts_with('/') && !url.starts_with("//") || url.starts_with("data:"),
                "{url} is not this server's"
            );
            if url.starts_with("/static/") {
                assets.push(url.to_string());
            }
        }
    }
    assert!(assets.iter().any(|a| a.ends_with(".js")), "{assets:?}");
    let mut texts = vec![("/api".to_string(), html)];
    for a in assets {
        let r = app
            .client
            .get(format!("{}{a}", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{a}");
        texts.push((a, r.text().await.unwrap()));
    }
    for (name, text) in &texts {
        for origin in ["http://", "https://", "//cdn", "//unpkg"] {
            assert!(!text.contains(origin), "{name} mentions {origin}");
        }
    }
    // The script renders what the server serves.
    let script = &texts.iter().find(|(n, _)| n.ends_with("api.js")).unwrap().1;
    for fetched in ["/api/v1/openapi.json", "/api/v1/socket-frames.schema.json"] {
        assert!(script.contains(fetched), "api.js does not read {fetched}");
    }
}
