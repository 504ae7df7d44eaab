//! Password scrambles for both directions: verifying a client's `mysql_native_password` or
//! `caching_sha2_password` answer against a configured password, and answering a backend's challenge.

use mysql_common::scramble::{scramble_native, scramble_sha256};
use rand::Rng;

pub const NATIVE: &str = "mysql_native_password";
pub const CACHING_SHA2: &str = "caching_sha2_password";

/// A fresh 20-byte challenge of printable, non-NUL bytes (clients treat it as a C string).
pub fn new_nonce() -> [u8; 20] {
    let mut rng = rand::rng();
    let mut n = [0u8; 20];
    for b in n.iter_mut() {
        *b = rng.random_range(0x21..0x7F);
    }
    n
}

/// Checks a client's answer to `nonce` for `plugin` against the configured plaintext password.
pub fn verify(plugin: &str, nonce: &[u8], password: &str, answer: &[u8]) -> bool {
    if password.is_empty() {
        return answer.is_empty();
    }
    let expected: Option<Vec<u8>> = match plugin {
        NATIVE => scramble_native(nonce, password.as_bytes()).map(|s| s.to_vec()),
        CACHING_SHA2 => scramble_sha256(nonce, password.as_bytes()).map(|s| s.to_vec()),
        _ => None,
    };
    match expected {
        Some(e) => constant_time_eq(&e, answer),
        None => false,
    }
}

/// Users whose password `caching_sha2_password`'s full authentication proved since start — MySQL's
/// cache, keyed by user and a digest of the password (a changed password is a miss): only they get
/// the fast path while the proxy offers TLS.
#[derive(Default)]
pub struct Sha2Cache(parking_lot::Mutex<std::collections::HashSet<(String, [u8; 32])>>);

impl Sha2Cache {
    fn key(user: &str, password: &str) -> (String, [u8; 32]) {
        use sha2::Digest;
        (user.to_string(), sha2::Sha256::digest(password.as_bytes()).into())
    }

    pub fn knows(&self, user: &str, password: &str) -> bool {
        self.0.lock().contains(&Self::key(user, password))
    }

    pub fn learn(&self, user: &str, password: &str) {
        self.0.lock().insert(Self::key(user, password));
    }
}

/// The answer a client gives to a server's challenge (used towards backends).
pub fn answer(plugin: &str, nonce: &[u8], password: &str) -> Option<Vec<u8>> {
    if password.is_empty() {
        return Some(Vec::new());
    }
    match plugin {
        NATIVE => scramble_native(nonce, password.as_bytes()).map(|s| s.to_vec()),
        CACHING_SHA2 => scramble_sha256(nonce, password.as_bytes()).map(|s| s.to_vec()),
        _ => None,
    }
}

pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn native_and_sha2_answers_verify() {
        let nonce = new_nonce();
        assert!(nonce.iter().all(|b| *b != 0));
        for plugin in [NATIVE, CACHING_SHA2] {
            let a = answer(plugin, &nonce, "secret").unwrap();
            assert!(verify(plugin, &nonce, "secret", &a));
            assert!(!verify(plugin, &nonce, "other", &a));
        }
        assert!(verify(NATIVE, &nonce, "", b""));
        assert!(!verify(NATIVE, &nonce, "", b"x"));
        assert!(!verify("dialog", &nonce, "secret", b"secret"));
    }
}
