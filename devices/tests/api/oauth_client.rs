//! A standard OAuth 2.0 client library (`oauth2`, RFC 8628 support) completes the device flow
//! against the service unchanged, with the endpoints it found in the RFC 8414 metadata. It is
//! handed the workspace's reqwest as its HTTP client.

use std::time::Duration;

use oauth2::{
    ClientId, DeviceAuthorizationUrl, EndpointNotSet, EndpointSet, Scope,
    StandardDeviceAuthorizationResponse, TokenResponse, TokenUrl, basic::BasicClient,
};
use reqwest::StatusCode;

use crate::helpers::*;

/// `oauth2`'s async HTTP client, by way of reqwest.
async fn send(
    http: reqwest::Client,
    request: oauth2::HttpRequest,
) -> Result<oauth2::HttpResponse, std::io::Error> {
    let request = reqwest::Request::try_from(request).map_err(std::io::Error::other)?;
    let response = http.execute(request).await.map_err(std::io::Error::other)?;
    let mut builder = oauth2::http::Response::builder().status(response.status());
    for (name, value) in response.headers() {
        builder = builder.header(name, value);
    }
    let body = response.bytes().await.map_err(std::io::Error::other)?;
    builder.body(body.to_vec()).map_err(std::io::Error::other)
}

/// A client with the two endpoints of the device flow set.
type DeviceFlowClient =
    BasicClient<EndpointNotSet, EndpointSet, EndpointNotSet, EndpointNotSet, EndpointSet>;

/// A client with the endpoints a standard client discovers from the service's address alone:
/// the RFC 8414 metadata.
async fn device_flow_client(app: &TestApp) -> DeviceFlowClient {
    let metadata: serde_json::Value =
        reqwest::get(app.url("/.well-known/oauth-authorization-server"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    assert_eq!(metadata["issuer"], app.address.as_str(), "{metadata}");
    assert_eq!(
        metadata["grant_types_supported"],
        serde_json::json!(["urn:ietf:params:oauth:grant-type:device_code"])
    );
    let endpoint = |name: &str| metadata[name].as_str().unwrap().to_owned();
    BasicClient::new(ClientId::new(CLIENT_ID.to_owned()))
        .set_device_authorization_url(
            DeviceAuthorizationUrl::new(endpoint("device_authorization_endpoint")).unwrap(),
        )
        .set_token_uri(TokenUrl::new(endpoint("token_endpoint")).unwrap())
}

#[tokio::test]
async fn the_oauth2_crate_completes_the_device_flow() {
    let app = spawn_app_with(|s| s.oauth.interval_seconds = 1).await;
    let client = device_flow_client(&app).await;
    let http = reqwest::Client::new();
    let http_client = |request| send(http.clone(), request);

    let details: StandardDeviceAuthorizationResponse = client
        .exchange_device_code()
        .add_scope(Scope::new("kitchen".into()))
        .request_async(&http_client)
        .await
        .unwrap();
    assert_eq!(details.interval(), Duration::from_secs(1));
    assert_eq!(details.expires_in(), Duration::from_secs(600));
    let user_code = details.user_code().secret().clone();
    assert!(
        details
            .verification_uri_complete()
            .unwrap()
            .secret()
            .ends_with(&user_code)
    );

    // The library polls (pending, then the token) while a manager approves.
    let polling = client.exchange_device_access_token(&details).request_async(
        &http_client,
        tokio::time::sleep,
        None,
    );
    let approving = async {
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        let response = app
            .approve(&app.manager_token, &user_code, app.tablet("packing"))
            .await;
        assert_eq!(response.status(), StatusCode::OK);
    };
    let (token, ()) = tokio::join!(polling, approving);
    let token = token.unwrap();
    let access_token = token.access_token().secret();
    assert!(access_token.starts_with("kdt_"));
    assert_eq!(*token.token_type(), oauth2::basic::BasicTokenType::Bearer);
    let answer = app.introspect(access_token).await;
    assert_eq!(answer["device"]["station"], "packing");
}

#[tokio::test]
async fn the_oauth2_crate_reports_a_denial() {
    let app = spawn_app_with(|s| s.oauth.interval_seconds = 1).await;
    let client = device_flow_client(&app).await;
    let http = reqwest::Client::new();
    let http_client = |request| send(http.clone(), request);
    let details: StandardDeviceAuthorizationResponse = client
        .exchange_device_code()
        .request_async(&http_client)
        .await
        .unwrap();
    app.deny(&app.manager_token, details.user_code().secret())
        .await;
    let error = client
        .exchange_device_access_token(&details)
        .request_async(&http_client, tokio::time::sleep, None)
        .await
        .unwrap_err();
    match error {
        oauth2::RequestTokenError::ServerResponse(e) => assert_eq!(
            *e.error(),
            oauth2::DeviceCodeErrorResponseType::AccessDenied
        ),
        other => panic!("expected access_denied, got {other:?}"),
    }
}
