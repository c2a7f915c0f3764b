use crate::common::TestServer;
use reqwest::StatusCode;

#[tokio::test]
async fn admin_can_login_and_list_tenants() {
    let s = TestServer::start().await;
    let (status, body) = s.get("/tenants", &s.admin_token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["total"], 1);
    assert_eq!(body["items"][0]["slug"], "master");
}
