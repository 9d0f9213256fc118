//! Keycloak client-credentials tokens for the API service, as tglib: fetched on first use,
//! sent as `Authorization: Bearer`, fetched again before `expires_in` runs out.

use std::time::{Duration, Instant};

use serde::Deserialize;
use tokio::sync::Mutex;

use super::error::ClientError;

pub struct Keycloak {
    url: String,
    client_id: String,
    client_secret: String,
    http: reqwest::Client,
    token: Mutex<Option<(String, Instant)>>,
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    expires_in: f64,
}

impl Keycloak {
    /// `host` includes the scheme, e.g. `http://keycloak:8080` (tglib's `KEYCLOAK_HOST`).
    pub fn new(host: &str, realm: &str, client_id: &str, client_secret: &str) -> Self {
        Self {
            url: format!(
                "{}/auth/realms/{realm}/protocol/openid-connect/token",
                host.trim_end_matches('/')
            ),
            client_id: client_id.to_owned(),
            client_secret: client_secret.to_owned(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap_or_default(),
            token: Mutex::new(None),
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// A token valid for a while yet; fetches a new one when the old is near expiry.
    pub async fn token(&self) -> Result<String, ClientError> {
        let mut held = self.token.lock().await;
        if let Some((token, refresh_at)) = held.as_ref()
            && Instant::now() < *refresh_at
        {
            return Ok(token.clone());
        }
        let answer = self
            .http
            .post(&self.url)
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", &self.client_id),
                ("client_secret", &self.client_secret),
            ])
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| ClientError::Upstream(format!("keycloak at {}: {e}", self.url)))?
            .json::<TokenAnswer>()
            .await
            .map_err(|e| ClientError::Upstream(format!("keycloak at {}: {e}", self.url)))?;
        // Refresh at 90% of the lifetime, so a request never carries a token that expires
        // on its way.
        let lifetime =
            Duration::try_from_secs_f64(answer.expires_in.max(0.0) * 0.9).unwrap_or(Duration::ZERO);
        *held = Some((answer.access_token.clone(), Instant::now() + lifetime));
        Ok(answer.access_token)
    }
}
