//! The two keys of crypto-shredding and what they do: the master key wraps data keys, a data
//! key seals one member's personal fields. Both are AES-256-GCM (RustCrypto `aes-gcm`, which
//! uses the CPU's AES instructions when present), with random 96-bit nonces: a member's key
//! seals a few thousand fields at most, far below the limit for random nonces.

use std::fmt;

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::Engine as _;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

const NONCE_LEN: usize = 12;

/// `CLINIC_MASTER_KEY`: wraps every member's data key. It lives only in the environment
/// (never in the database), so a copy of the database alone reads no personal data.
#[derive(Clone)]
pub struct MasterKey {
    cipher: Aes256Gcm,
    id: String,
}

/// Why a `CLINIC_MASTER_KEY` value was refused. Never carries the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MasterKeyError {
    /// Not base64 at all.
    #[error("is not base64 (expected base64 of 32 random bytes, e.g. `openssl rand -base64 32`)")]
    NotBase64,
    /// Base64 of the wrong number of bytes.
    #[error("decodes to {0} bytes, not 32 (expected base64 of 32 random bytes)")]
    WrongLength(usize),
}

impl MasterKey {
    /// Parses base64 (standard alphabet, padding optional) of exactly 32 bytes.
    pub fn from_base64(text: &str) -> Result<Self, MasterKeyError> {
        let text = text.trim().trim_end_matches('=');
        let bytes = Zeroizing::new(
            base64::engine::general_purpose::STANDARD_NO_PAD
                .decode(text)
                .map_err(|_| MasterKeyError::NotBase64)?,
        );
        let bytes: &[u8; 32] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| MasterKeyError::WrongLength(bytes.len()))?;
        Ok(Self::from_bytes(bytes))
    }

    /// A fresh random key, with its base64 text (for `serve --dev` and tests).
    pub fn generate() -> (Self, Zeroizing<String>) {
        let key = Aes256Gcm::generate_key(OsRng);
        let text = Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(key));
        (Self::from_bytes(&key.into()), text)
    }

    fn from_bytes(bytes: &[u8; 32]) -> Self {
        let digest = Sha256::digest(bytes);
        Self {
            cipher: Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(bytes)),
            id: hex::encode(&digest[..8]),
        }
    }

    /// A public fingerprint (16 hex digits of SHA-256 over the key), stored beside every key it
    /// wraps, so a wrong master key is recognised before anything is written with it.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Wraps a data key for `member` (bound to it: a wrapped key copied to another member's
    /// row does not unwrap).
    pub(crate) fn wrap(&self, member: uuid::Uuid, key: &DataKey) -> Vec<u8> {
        seal(&self.cipher, key.bytes.as_slice(), member.as_bytes())
    }

    /// Unwraps a data key stored for `member`; `None` if this is not the key that wrapped it
    /// or the bytes were altered.
    pub(crate) fn unwrap(&self, member: uuid::Uuid, wrapped: &[u8]) -> Option<DataKey> {
        let bytes = Zeroizing::new(open(&self.cipher, wrapped, member.as_bytes())?);
        let bytes: &[u8; 32] = bytes.as_slice().try_into().ok()?;
        Some(DataKey::from_bytes(bytes))
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MasterKey({})", self.id)
    }
}

/// One member's data key: seals their personal fields. Destroying its wrapped copy is what
/// erases the member.
#[derive(Clone)]
pub struct DataKey {
    bytes: Zeroizing<[u8; 32]>,
    cipher: Aes256Gcm,
}

impl DataKey {
    /// A fresh random key.
    pub(crate) fn generate() -> Self {
        Self::from_bytes(&Aes256Gcm::generate_key(OsRng).into())
    }

    fn from_bytes(bytes: &[u8; 32]) -> Self {
        Self {
            bytes: Zeroizing::new(*bytes),
            cipher: Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(bytes)),
        }
    }

    /// `nonce || ciphertext || tag` of `plaintext`, authenticated with `aad` (the event and
    /// field it belongs to, so a ciphertext cannot be moved elsewhere).
    pub(crate) fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Vec<u8> {
        seal(&self.cipher, plaintext, aad)
    }

    /// The plaintext of [`DataKey::seal`]'s output; `None` if it was altered or is not ours.
    pub(crate) fn open(&self, sealed: &[u8], aad: &[u8]) -> Option<Vec<u8>> {
        open(&self.cipher, sealed, aad)
    }
}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DataKey(..)")
    }
}

fn seal(cipher: &Aes256Gcm, plaintext: &[u8], aad: &[u8]) -> Vec<u8> {
    let nonce = Aes256Gcm::generate_nonce(OsRng);
    // AES-GCM fails only for plaintexts over 64 GiB; personal fields are short strings.
    #[allow(clippy::expect_used)]
    let ciphertext = cipher
        .encrypt(
            &nonce,
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .expect("AES-GCM seals any plaintext under 64 GiB");
    let mut sealed = Vec::with_capacity(NONCE_LEN + ciphertext.len());
    sealed.extend_from_slice(&nonce);
    sealed.extend_from_slice(&ciphertext);
    sealed
}

fn open(cipher: &Aes256Gcm, sealed: &[u8], aad: &[u8]) -> Option<Vec<u8>> {
    if sealed.len() < NONCE_LEN {
        return None;
    }
    let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
    cipher
        .decrypt(
            Nonce::from_slice(nonce),
            Payload {
                msg: ciphertext,
                aad,
            },
        )
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_field_opens_only_with_its_key_and_its_aad() {
        let key = DataKey::generate();
        let sealed = key.seal(b"Jordan Example", b"event-1/name");
        assert_eq!(
            key.open(&sealed, b"event-1/name").as_deref(),
            Some(&b"Jordan Example"[..])
        );
        assert_eq!(key.open(&sealed, b"event-2/name"), None);
        assert_eq!(DataKey::generate().open(&sealed, b"event-1/name"), None);
        let mut altered = sealed.clone();
        let last = altered.len() - 1;
        altered[last] ^= 1;
        assert_eq!(key.open(&altered, b"event-1/name"), None);
        assert!(!sealed.windows(6).any(|w| w == b"Jordan"));
    }

    #[test]
    fn a_wrapped_key_unwraps_only_with_its_master_key_and_for_its_member() {
        let (master, _) = MasterKey::generate();
        let (other, _) = MasterKey::generate();
        let member = uuid::Uuid::new_v4();
        let key = DataKey::generate();
        let wrapped = master.wrap(member, &key);
        let unwrapped = master.unwrap(member, &wrapped).expect("unwraps");
        assert_eq!(*unwrapped.bytes, *key.bytes);
        assert!(other.unwrap(member, &wrapped).is_none());
        assert!(master.unwrap(uuid::Uuid::new_v4(), &wrapped).is_none());
    }

    #[test]
    fn master_keys_parse_from_base64_of_32_bytes_only() {
        let (key, text) = MasterKey::generate();
        assert_eq!(
            MasterKey::from_base64(&text).expect("parses").id(),
            key.id()
        );
        assert_eq!(
            MasterKey::from_base64(&format!(" {}\n", text.as_str()))
                .expect("trims")
                .id(),
            key.id()
        );
        assert_eq!(
            MasterKey::from_base64("c2hvcnQ=").err(),
            Some(MasterKeyError::WrongLength(5))
        );
        assert_eq!(
            MasterKey::from_base64("not base64!").err(),
            Some(MasterKeyError::NotBase64)
        );
        assert_eq!(key.id().len(), 16);
        assert!(!format!("{key:?}").contains(text.as_str()));
    }
}
