//! Amazon SES v2: the JSON request of `providers`, signed with AWS SigV4 (service `ses`).

use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;

/// Who signs, and for which region.
pub struct AwsKeys<'a> {
    pub region: &'a str,
    pub access_key_id: &'a str,
    pub secret_access_key: &'a str,
    /// Only for temporary credentials.
    pub session_token: Option<&'a str>,
}

/// The headers that sign a request to SES: `authorization`, `x-amz-date`, and for temporary
/// credentials `x-amz-security-token`.
pub fn signature_headers(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    keys: &AwsKeys<'_>,
    time: SystemTime,
) -> Result<Vec<(String, String)>, String> {
    let token = keys.session_token.map(str::to_owned);
    let identity = Credentials::new(keys.access_key_id, keys.secret_access_key, token, None, "switchyard").into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(keys.region)
        .name("ses")
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| e.to_string())?
        .into();
    let request = SignableRequest::new(method, url, headers.iter().copied(), SignableBody::Bytes(body)).map_err(|e| e.to_string())?;
    let (instructions, _) = sign(request, &params).map_err(|e| e.to_string())?.into_parts();
    Ok(instructions.headers().map(|(name, value)| (name.to_owned(), value.to_owned())).collect())
}
