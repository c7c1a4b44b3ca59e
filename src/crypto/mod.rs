//! Secrets at rest and API tokens.

pub mod api_token;
pub(crate) mod secret_box;
pub mod webhook_signatures;

/// Fills a fixed-size array from the operating system's CSPRNG.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    use rand::TryRngCore;
    let mut bytes = [0u8; N];
    rand::rngs::OsRng.try_fill_bytes(&mut bytes).expect("the OS random source is available");
    bytes
}
