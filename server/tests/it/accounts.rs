use crate::support::{assert_error, Backend, TestApp};
use serde_json::{json, Value};

const PASSWORD: &str = "correct horse battery";

async fn signup(app: &TestApp, username: &str, password: &str) -> reqwest::Response {
    app.post_json("/api/v1/auth/signup", &json!({"username": username, "password": password})).await
}

async fn token(app: &TestApp, username: &str, password: &str) -> reqwest::Response {
    app.post_json("/api/v1/auth/tokens", &json!({"username": username, "password": password})).await
}

async fn accounts_roles_and_tokens(backend: Backend) {
    let app = TestApp::spawn(backend).await;

    let res = signup(&app, "Ada", PASSWORD).await;
    assert_eq!(res.status(), 201);
    let ada: Value = res.json().await.unwrap();
    assert_eq!((ada["username"].as_str(), ada["role"].as_str()), (Some("ada"), Some("admin")), "first account is admin");

    let res = signup(&app, "grace", PASSWORD).await;
    let grace: Value = res.json().await.unwrap();
    assert_eq!(grace["role"], "member");

    let res = token(&app, "grace", PASSWORD).await;
    assert_eq!(res.status(), 201);
    let issued: Value = res.json().await.unwrap();
    let bearer = issued["token"].as_str().unwrap().to_owned();
    assert!(bearer.starts_with("sb_"));

    let me: Value = app.client.get(app.url("/api/v1/me")).bearer_auth(&bearer).send().await.unwrap().json().await.unwrap();
    assert_eq!(me["username"], "grace");

    // The token list never shows the secret; revoking makes the token useless at once.
    let list: Value = app.client.get(app.url("/api/v1/me/tokens")).bearer_auth(&bearer).send().await.unwrap().json().await.unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert!(!list.to_string().contains(&bearer));
    let id = list[0]["id"].as_i64().unwrap();
    let res = app.client.delete(app.url(&format!("/api/v1/me/tokens/{id}"))).bearer_auth(&bearer).send().await.unwrap();
    assert_eq!(res.status(), 204);
    let res = app.client.get(app.url("/api/v1/me")).bearer_auth(&bearer).send().await.unwrap();
    assert_error(res, 401, "unauthorized", None).await;

    app.stop().await;
}

both_backends!(accounts_roles_and_tokens);

#[tokio::test]
async fn bad_sign_ups_get_clear_errors_naming_the_field() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    assert_eq!(signup(&app, "ada", PASSWORD).await.status(), 201);

    assert_error(signup(&app, "ADA", PASSWORD).await, 409, "username_taken", Some("username")).await;
    assert_error(signup(&app, "bob", "short").await, 400, "invalid_field", Some("password")).await;
    assert_error(signup(&app, "bob", "password12345").await, 400, "invalid_field", Some("password")).await;
    assert_error(signup(&app, &"b".repeat(33), PASSWORD).await, 400, "invalid_field", Some("username")).await;
    assert_error(signup(&app, "", PASSWORD).await, 400, "invalid_field", Some("username")).await;
    let long_name = json!({"username": "bob", "password": PASSWORD, "display_name": "x".repeat(101)});
    assert_error(app.post_json("/api/v1/auth/signup", &long_name).await, 400, "invalid_field", Some("display_name")).await;
    let missing = json!({"username": "bob"});
    assert_error(app.post_json("/api/v1/auth/signup", &missing).await, 400, "invalid_field", Some("password")).await;
    let wrong_type = json!({"username": 7, "password": PASSWORD});
    assert_error(app.post_json("/api/v1/auth/signup", &wrong_type).await, 400, "invalid_field", Some("username")).await;
    let res = app.client.post(app.url("/api/v1/auth/signup")).header("content-type", "application/json").body("{oops").send().await.unwrap();
    assert_error(res, 400, "invalid_field", Some("body")).await;
    let res = app.client.post(app.url("/api/v1/auth/signup")).body("username=bob").send().await.unwrap();
    assert_error(res, 400, "invalid_field", Some("body")).await;

    // None of the refused sign-ups created an account.
    assert_error(token(&app, "bob", PASSWORD).await, 401, "unauthorized", None).await;
    app.stop().await;
}

#[tokio::test]
async fn wrong_passwords_are_refused_alike_and_rate_limited() {
    // The default per-account limit (the test settings raise it for everyone else).
    let app = TestApp::spawn_with(Backend::Sqlite, |s| s.part_mut::<app::accounts::settings::AuthSettings>().login_per_user_per_min = 10).await;
    assert_eq!(signup(&app, "ada", PASSWORD).await.status(), 201);

    let wrong = assert_error(token(&app, "ada", "not the password").await, 401, "unauthorized", None).await;
    let unknown = assert_error(token(&app, "nobody", PASSWORD).await, 401, "unauthorized", None).await;
    assert_eq!(wrong["error"]["message"], unknown["error"]["message"], "no hint which usernames exist");
    assert_error(token(&app, "ada", "").await, 400, "invalid_field", Some("password")).await;

    let mut limited = None;
    for _ in 0..12 {
        let res = token(&app, "ada", "still wrong!").await;
        if res.status() == 429 {
            limited = Some(res);
            break;
        }
    }
    let res = limited.expect("the 12th wrong password in a minute is rate-limited");
    assert_error(res, 429, "rate_limited", None).await;
    // The limit is per username: others can still sign in.
    assert_eq!(signup(&app, "grace", PASSWORD).await.status(), 201);
    assert_eq!(token(&app, "grace", PASSWORD).await.status(), 201);
    app.stop().await;
}

#[tokio::test]
async fn browser_log_in_sets_a_session_cookie_and_log_out_ends_it() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    assert_eq!(signup(&app, "ada", PASSWORD).await.status(), 201);

    // What the log-in form posts when JavaScript is off.
    let res = app
        .client
        .post(app.url("/_fn/log_in"))
        .header("accept", "text/html")
        .header("referer", app.url("/login"))
        .form(&[("username", "ada"), ("password", PASSWORD), ("next", "/account")])
        .send()
        .await
        .unwrap();
    assert!(res.status().is_redirection(), "{}", res.status());
    let cookie = res.headers().get("set-cookie").unwrap().to_str().unwrap().to_owned();
    assert!(cookie.starts_with("sb_session="), "{cookie}");
    for attr in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(cookie.contains(attr), "{cookie} lacks {attr}");
    }
    assert_eq!(res.headers()["location"], "/account");

    let me: Value = app.get("/api/v1/me").await.json().await.unwrap();
    assert_eq!(me["username"], "ada");

    let res = app.client.post(app.url("/_fn/log_out")).header("accept", "text/html").send().await.unwrap();
    assert!(res.status().is_redirection());
    assert_error(app.get("/api/v1/me").await, 401, "unauthorized", None).await;
    app.stop().await;
}

#[tokio::test]
async fn a_bogus_bearer_token_is_refused_even_with_a_session() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let res = app.client.get(app.url("/api/v1/me")).bearer_auth("sb_not-a-token").send().await.unwrap();
    assert_error(res, 401, "unauthorized", None).await;
    assert_error(app.get("/api/v1/me").await, 401, "unauthorized", None).await;
    app.stop().await;
}

#[tokio::test]
async fn server_function_errors_carry_their_real_status() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    assert_eq!(signup(&app, "ada", PASSWORD).await.status(), 201);
    // As the hydrated app calls it (no text/html in Accept).
    let res = app.client.post(app.url("/_fn/log_in")).form(&[("username", "ada"), ("password", "wrong password!")]).send().await.unwrap();
    assert_eq!(res.status(), 401);
    let err: Value = res.json().await.unwrap();
    assert_eq!((err["code"].as_str(), err["status"].as_u64()), (Some("unauthorized"), Some(401)));
    app.stop().await;
}
