//! The token vault: AES-256-GCM encryption of secrets at rest (bot tokens).
//!
//! Each ciphertext records the id of the key that sealed it (for rotation) and is bound by
//! associated data to its purpose and row (tenant, bot), so a ciphertext copied into
//! another row does not decrypt.

use std::collections::HashMap;
use std::fmt;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, Zeroizing};

use crate::ids::{BotId, TenantId};

/// A 256-bit master key. Never printed.
#[derive(Clone, Zeroize)]
#[zeroize(drop)]
pub struct MasterKey([u8; 32]);

impl MasterKey {
    pub fn generate() -> Self {
        let mut k = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut k);
        Self(k)
    }

    /// Parses a key given as base64 (standard or URL-safe, with or without padding).
    pub fn from_base64(text: &str) -> Result<Self, VaultError> {
        let text = text.trim();
        let decoded = Zeroizing::new(
            base64::engine::general_purpose::STANDARD
                .decode(text)
                .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(text))
                .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(text))
                .map_err(|_| VaultError::BadKey("the master key is not valid base64".into()))?,
        );
        let bytes: [u8; 32] = decoded.as_slice().try_into().map_err(|_| {
            VaultError::BadKey(format!(
                "the master key must be 32 bytes, got {}",
                decoded.len()
            ))
        })?;
        Ok(Self(bytes))
    }

    pub fn to_base64(&self) -> Zeroizing<String> {
        Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(self.0))
    }

    /// A short public fingerprint of the key, stored beside each ciphertext.
    pub fn key_id(&self) -> String {
        let digest = Sha256::digest([b"switchboard-key-id:".as_slice(), &self.0].concat());
        digest[..6].iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MasterKey({})", self.key_id())
    }
}

/// What a sealed secret is, and which row it belongs to.
#[derive(Clone, Copy, Debug)]
pub enum SecretPurpose {
    BotToken { tenant: TenantId, bot: BotId },
}

impl SecretPurpose {
    fn associated_data(&self, key_id: &str) -> Vec<u8> {
        match self {
            SecretPurpose::BotToken { tenant, bot } => {
                format!("switchboard/bot-token/v1/{tenant}/{bot}/{key_id}").into_bytes()
            }
        }
    }
}

/// A ciphertext with what is needed to open it again.
#[derive(Clone, PartialEq, Eq)]
pub struct Sealed {
    pub key_id: String,
    pub nonce: Vec<u8>,
    pub ciphertext: Vec<u8>,
}

impl fmt::Debug for Sealed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Sealed(key {}, {} bytes)",
            self.key_id,
            self.ciphertext.len()
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error("{0}")]
    BadKey(String),
    #[error("no master key with id {0} is configured")]
    UnknownKey(String),
    #[error("the secret could not be decrypted (wrong key or tampered data)")]
    Decrypt,
}

/// Holds the current master key (used to seal) and older ones (still able to open).
#[derive(Clone)]
pub struct Vault {
    current_id: String,
    ciphers: HashMap<String, Aes256Gcm>,
}

impl fmt::Debug for Vault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Vault")
            .field("current_key", &self.current_id)
            .field("keys", &self.ciphers.len())
            .finish()
    }
}

impl Vault {
    pub fn new(current: &MasterKey, older: &[MasterKey]) -> Self {
        let mut ciphers = HashMap::new();
        for key in std::iter::once(current).chain(older) {
            ciphers.insert(key.key_id(), Aes256Gcm::new((&key.0).into()));
        }
        Self {
            current_id: current.key_id(),
            ciphers,
        }
    }

    pub fn current_key_id(&self) -> &str {
        &self.current_id
    }

    pub fn seal(&self, purpose: SecretPurpose, plaintext: &[u8]) -> Sealed {
        let cipher = &self.ciphers[&self.current_id];
        let mut nonce = [0u8; 12];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let aad = purpose.associated_data(&self.current_id);
        let ciphertext = cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: &aad,
                },
            )
            .expect("AES-GCM encryption cannot fail for in-memory buffers");
        Sealed {
            key_id: self.current_id.clone(),
            nonce: nonce.to_vec(),
            ciphertext,
        }
    }

    pub fn open(
        &self,
        purpose: SecretPurpose,
        sealed: &Sealed,
    ) -> Result<Zeroizing<Vec<u8>>, VaultError> {
        let cipher = self
            .ciphers
            .get(&sealed.key_id)
            .ok_or_else(|| VaultError::UnknownKey(sealed.key_id.clone()))?;
        if sealed.nonce.len() != 12 {
            return Err(VaultError::Decrypt);
        }
        let aad = purpose.associated_data(&sealed.key_id);
        cipher
            .decrypt(
                Nonce::from_slice(&sealed.nonce),
                Payload {
                    msg: &sealed.ciphertext,
                    aad: &aad,
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| VaultError::Decrypt)
    }

    /// Opens with whichever key sealed it and seals again under the current key.
    pub fn reseal(&self, purpose: SecretPurpose, sealed: &Sealed) -> Result<Sealed, VaultError> {
        let plain = self.open(purpose, sealed)?;
        Ok(self.seal(purpose, &plain))
    }
}

/// Hash of a high-entropy secret (API token, webhook secret) for storage and lookup.
pub fn secret_digest(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

/// Compares a presented secret with a stored digest in constant time.
pub fn secret_matches(presented: &str, stored_digest: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    secret_digest(presented).ct_eq(stored_digest).into()
}

/// A random token of `len` characters from `A-Za-z0-9` (fits Telegram's secret_token alphabet).
pub fn random_token(len: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rngs::OsRng;
    (0..len)
        .map(|_| {
            // 62 * 4 = 248: rejection sampling keeps the distribution uniform.
            loop {
                let b = (rng.next_u32() & 0xff) as u8;
                if b < 248 {
                    return ALPHABET[(b % 62) as usize] as char;
                }
            }
        })
        .collect()
}

/// A masked form of a bot token for display: the bot id part and the last 4 characters.
pub fn mask_bot_token(token: &str) -> String {
    let (id, secret) = token.split_once(':').unwrap_or(("", token));
    let tail: String = secret
        .chars()
        .rev()
        .take(4)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    if id.is_empty() {
        format!("…{tail}")
    } else {
        format!("{id}:…{tail}")
    }
}

/// A new personal API token: (the token to show once, its digest to store, a display prefix).
pub fn generate_api_token() -> (String, Vec<u8>, String) {
    let token = format!("sb_{}", random_token(40));
    let digest = secret_digest(&token);
    let prefix = token[..10].to_string();
    (token, digest, prefix)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn purpose() -> SecretPurpose {
        SecretPurpose::BotToken {
            tenant: TenantId::new(),
            bot: BotId::new(),
        }
    }

    #[test]
    fn seal_and_open_round_trip_with_random_nonces() {
        let vault = Vault::new(&MasterKey::generate(), &[]);
        let p = purpose();
        let a = vault.seal(p, b"123:secret");
        let b = vault.seal(p, b"123:secret");
        assert_ne!(a.nonce, b.nonce, "every encryption needs a fresh nonce");
        assert_ne!(a.ciphertext, b.ciphertext);
        assert_eq!(vault.open(p, &a).unwrap().as_slice(), b"123:secret");
        assert!(!a.ciphertext.windows(6).any(|w| w == b"secret"));
    }

    #[test]
    fn ciphertext_is_bound_to_its_row() {
        let vault = Vault::new(&MasterKey::generate(), &[]);
        let sealed = vault.seal(purpose(), b"token");
        assert!(matches!(
            vault.open(purpose(), &sealed),
            Err(VaultError::Decrypt)
        ));
    }

    #[test]
    fn tampering_is_detected() {
        let vault = Vault::new(&MasterKey::generate(), &[]);
        let p = purpose();
        let mut sealed = vault.seal(p, b"token");
        sealed.ciphertext[0] ^= 1;
        assert!(vault.open(p, &sealed).is_err());
    }

    #[test]
    fn old_keys_open_and_reseal_under_the_new_key() {
        let old = MasterKey::generate();
        let new = MasterKey::generate();
        let p = purpose();
        let sealed = Vault::new(&old, &[]).seal(p, b"token");
        let rotated = Vault::new(&new, std::slice::from_ref(&old));
        let resealed = rotated.reseal(p, &sealed).unwrap();
        assert_eq!(resealed.key_id, new.key_id());
        assert_eq!(
            Vault::new(&new, &[]).open(p, &resealed).unwrap().as_slice(),
            b"token"
        );
        assert!(matches!(
            Vault::new(&new, &[]).open(p, &sealed),
            Err(VaultError::UnknownKey(_))
        ));
    }

    #[test]
    fn keys_parse_from_base64_and_reject_wrong_sizes() {
        let key = MasterKey::generate();
        let parsed = MasterKey::from_base64(&key.to_base64()).unwrap();
        assert_eq!(parsed.key_id(), key.key_id());
        assert!(MasterKey::from_base64("c2hvcnQ=").is_err());
        assert!(MasterKey::from_base64("!!!").is_err());
        assert!(!format!("{key:?}").contains(key.to_base64().as_str()));
    }

    #[test]
    fn secrets_compare_by_digest() {
        let digest = secret_digest("abc");
        assert!(secret_matches("abc", &digest));
        assert!(!secret_matches("abd", &digest));
        assert!(!secret_matches("", &digest));
    }

    #[test]
    fn random_tokens_use_the_telegram_secret_alphabet() {
        let t = random_token(48);
        assert_eq!(t.len(), 48);
        assert!(t.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(t, random_token(48));
    }

    #[test]
    fn api_tokens_are_random_and_stored_as_digests() {
        let (token, digest, prefix) = generate_api_token();
        assert!(token.starts_with("sb_") && token.len() == 43);
        assert!(token.starts_with(&prefix));
        assert!(secret_matches(&token, &digest));
        assert_ne!(generate_api_token().0, token);
    }

    #[test]
    fn masks_hide_the_secret_part() {
        assert_eq!(mask_bot_token("123456:ABCdefGHIjklMNOpqr"), "123456:…Opqr");
        assert_eq!(mask_bot_token("abc"), "…abc");
    }
}
