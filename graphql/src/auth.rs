//! Staff tokens: HS256 JWTs carrying who (`sub`), what they may do (`role`) and which clinic
//! they work for (`clinic`). The clinic claim scopes every read and write.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use clinic_infra::clinic::ClinicId;
use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// What a staff member may do (DOMAIN.md "Who may do what"). A token's `role` claim is read
/// in any case (`admin`, `ADMIN`: the GraphQL enum's spelling), since other issuers than
/// `clinic token` sign staff tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Everything in their clinic.
    Admin,
    /// Members and groups: all commands and reads.
    Clinician,
    /// Their own groups' sessions, rosters and attendance.
    Facilitator,
    /// Referrals and intake.
    Intake,
    /// Reads everything, changes nothing.
    Auditor,
}

impl Role {
    /// Every role, for help texts and tests.
    pub const ALL: [Role; 5] = [
        Role::Admin,
        Role::Clinician,
        Role::Facilitator,
        Role::Intake,
        Role::Auditor,
    ];

    fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Clinician => "clinician",
            Role::Facilitator => "facilitator",
            Role::Intake => "intake",
            Role::Auditor => "auditor",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown role name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a role is one of admin, clinician, facilitator, intake, auditor")]
pub struct UnknownRole;

impl FromStr for Role {
    type Err = UnknownRole;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|role| role.as_str().eq_ignore_ascii_case(raw))
            .ok_or(UnknownRole)
    }
}

impl<'de> Deserialize<'de> for Role {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        raw.parse()
            .map_err(|_| serde::de::Error::custom(format_args!("unknown role {raw:?}")))
    }
}

/// The claims of a staff token: the contract's `sub`, `role`, `clinic` and `exp`, and the
/// `iat` that `clinic token` adds (optional: a token from another issuer may not carry it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The staff member (recorded as the actor of what they do).
    pub sub: String,
    /// What they may do.
    pub role: Role,
    /// The clinic they work for.
    pub clinic: String,
    /// Expiry, seconds since the Unix epoch.
    pub exp: i64,
    /// Issued at, seconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
}

/// A verified staff member: the claims of a token that passed every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Staff {
    /// Their `sub`.
    pub sub: String,
    /// Their role.
    pub role: Role,
    /// Their clinic, validated.
    pub clinic: ClinicId,
    /// When the token expires (`exp`): a subscription opened with it ends then.
    pub expires_at: OffsetDateTime,
}

/// Why a token was refused. Deliberately coarse: the client learns only that it must log in.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No `Authorization: Bearer` token.
    #[error("a bearer token is required")]
    Missing,
    /// Malformed, wrongly signed, of another algorithm, or expired.
    #[error("the token is invalid or expired")]
    Invalid,
}

/// Signs and checks tokens with one HS256 secret. Cheap to clone (shared): every request's
/// handler state holds it.
#[derive(Clone)]
pub struct TokenKeys(Arc<Keys>);

struct Keys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenKeys(..)")
    }
}

impl TokenKeys {
    /// Keys from the `CLINIC_JWT_SECRET`.
    pub fn new(secret: &SecretString) -> Self {
        let bytes = secret.expose_secret().as_bytes();
        // Only HS256: a token claiming `none` or another algorithm is refused.
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 5;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Self(Arc::new(Keys {
            encoding: EncodingKey::from_secret(bytes),
            decoding: DecodingKey::from_secret(bytes),
            validation,
        }))
    }

    /// A token for `sub` valid for `ttl` from `now`.
    pub fn sign(
        &self,
        sub: &str,
        role: Role,
        clinic: &ClinicId,
        now: OffsetDateTime,
        ttl: time::Duration,
    ) -> String {
        let claims = Claims {
            sub: sub.to_owned(),
            role,
            clinic: clinic.to_string(),
            iat: Some(now.unix_timestamp()),
            exp: (now + ttl).unix_timestamp(),
        };
        encode(&Header::new(Algorithm::HS256), &claims, &self.0.encoding)
            .expect("HS256 signing of plain claims cannot fail")
    }

    /// Checks a token and returns who it speaks for.
    pub fn verify(&self, token: &str) -> Result<Staff, AuthError> {
        let data = decode::<Claims>(token, &self.0.decoding, &self.0.validation)
            .map_err(|_| AuthError::Invalid)?;
        let claims = data.claims;
        let clinic = ClinicId::parse(&claims.clinic).map_err(|_| AuthError::Invalid)?;
        if claims.sub.trim().is_empty() {
            return Err(AuthError::Invalid);
        }
        let expires_at =
            OffsetDateTime::from_unix_timestamp(claims.exp).map_err(|_| AuthError::Invalid)?;
        Ok(Staff {
            sub: claims.sub,
            role: claims.role,
            clinic,
            expires_at,
        })
    }

    /// Checks an `Authorization` header value (`Bearer <token>`).
    pub fn verify_header(&self, header: Option<&str>) -> Result<Staff, AuthError> {
        let header = header.ok_or(AuthError::Missing)?;
        // The scheme's name is case-insensitive, and spaces or tabs separate it (RFC 9110 11.4).
        let (scheme, token) = header.split_once([' ', '\t']).ok_or(AuthError::Invalid)?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(AuthError::Invalid);
        }
        self.verify(token.trim())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn keys(secret: &str) -> TokenKeys {
        TokenKeys::new(&SecretString::from(secret.to_owned()))
    }

    fn north() -> ClinicId {
        ClinicId::parse("north").unwrap()
    }

    #[test]
    fn a_signed_token_verifies_to_its_staff_member() {
        let keys = keys("a-secret-of-some-length");
        let token = keys.sign(
            "dr-lee",
            Role::Clinician,
            &north(),
            OffsetDateTime::now_utc(),
            time::Duration::hours(1),
        );
        for spelling in [format!("BEARER {token}"), format!("bearer\t {token} \r\n")] {
            assert!(keys.verify_header(Some(&spelling)).is_ok(), "{spelling}");
        }
        let staff = keys
            .verify_header(Some(&format!("Bearer {token}")))
            .unwrap();
        let expires_at = staff.expires_at;
        assert_eq!(
            staff,
            Staff {
                sub: "dr-lee".into(),
                role: Role::Clinician,
                clinic: north(),
                expires_at,
            }
        );
        let ttl = expires_at - OffsetDateTime::now_utc();
        assert!(ttl > time::Duration::minutes(59) && ttl <= time::Duration::hours(1));
    }

    #[test]
    fn wrong_signature_expired_unsigned_and_malformed_tokens_are_refused() {
        let keys = keys("a-secret-of-some-length");
        let now = OffsetDateTime::now_utc();
        let other = self::keys("another-secret-entirely").sign(
            "x",
            Role::Admin,
            &north(),
            now,
            time::Duration::hours(1),
        );
        assert_eq!(keys.verify(&other), Err(AuthError::Invalid));

        let expired = keys.sign(
            "x",
            Role::Admin,
            &north(),
            now - time::Duration::hours(2),
            time::Duration::hours(1),
        );
        assert_eq!(keys.verify(&expired), Err(AuthError::Invalid));

        // {"alg":"none"} with valid-looking claims and no signature.
        let header = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0";
        let claims = format!(
            r#"{{"sub":"x","role":"admin","clinic":"north","exp":{},"iat":0}}"#,
            now.unix_timestamp() + 3600
        );
        let unsigned = format!("{header}.{}.", base64_url(claims.as_bytes()));
        assert_eq!(keys.verify(&unsigned), Err(AuthError::Invalid));

        assert_eq!(keys.verify("not.a.token"), Err(AuthError::Invalid));
        assert_eq!(keys.verify_header(None), Err(AuthError::Missing));
        for header in ["Basic abc", "Bearer", "Bearerabc", ""] {
            assert_eq!(
                keys.verify_header(Some(header)),
                Err(AuthError::Invalid),
                "{header}"
            );
        }
    }

    fn base64_url(bytes: &[u8]) -> String {
        const ALPHABET: &[u8; 64] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let n = chunk.iter().fold(0u32, |acc, b| acc << 8 | u32::from(*b))
                << (8 * (3 - chunk.len()));
            for i in 0..=chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            }
        }
        out
    }

    #[test]
    fn a_token_with_only_the_contracts_claims_verifies_and_its_role_in_any_case() {
        let secret = "a-secret-of-some-length";
        let exp = OffsetDateTime::now_utc().unix_timestamp() + 3600;
        let signed = |role: &str| {
            let claims =
                serde_json::json!({ "sub": "dr-lee", "role": role, "clinic": "north", "exp": exp });
            encode(
                &Header::new(Algorithm::HS256),
                &claims,
                &EncodingKey::from_secret(secret.as_bytes()),
            )
            .unwrap()
        };
        let keys = keys(secret);
        assert_eq!(keys.verify(&signed("ADMIN")).unwrap().role, Role::Admin);
        assert_eq!(
            keys.verify(&signed("clinician")).unwrap().role,
            Role::Clinician
        );
        assert_eq!(keys.verify(&signed("root")), Err(AuthError::Invalid));
    }

    #[test]
    fn roles_parse_by_name() {
        assert_eq!("Auditor".parse::<Role>(), Ok(Role::Auditor));
        assert_eq!("root".parse::<Role>(), Err(UnknownRole));
    }
}
