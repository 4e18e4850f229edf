//! `private_key_jwt` (RFC 7523 §2.2): the signed JWT a client-credentials
//! client authenticates with at the token endpoint, made by the
//! `jsonwebtoken` crate. The key is PEM: an EC P-256 key signs ES256, an RSA
//! key RS256. Neither the key nor its file's contents ever reach an error,
//! a log line or `status`.

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;

use super::OAuthError;

/// How long an assertion is good for: it is made for one token request.
const LIFETIME_SECS: u64 = 300;

/// Where a client's private key is (`oauth.private_key` or
/// `oauth.private_key_file`).
#[derive(Clone, PartialEq)]
pub enum PrivateKey {
    /// The PEM itself (a `${VAR}` of the gateway's `.env`).
    Pem(String),
    /// A PEM file, read for each assertion (so a rotated file is picked up).
    File(PathBuf),
}

impl std::fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PrivateKey::Pem(_) => f.write_str("Pem(<redacted>)"),
            PrivateKey::File(path) => f.debug_tuple("File").field(path).finish(),
        }
    }
}

impl PrivateKey {
    /// The config key that names this key, for an error to point at.
    pub fn config_key(&self) -> &'static str {
        match self {
            PrivateKey::Pem(_) => "oauth.private_key",
            PrivateKey::File(_) => "oauth.private_key_file",
        }
    }

    /// The signing key and its algorithm: ES256 for an EC key, RS256 for RSA.
    fn load(&self) -> Result<(EncodingKey, Algorithm), OAuthError> {
        let pem = match self {
            PrivateKey::Pem(pem) => pem.clone(),
            PrivateKey::File(path) => std::fs::read_to_string(path)
                .map_err(|e| OAuthError::Credentials(format!("`oauth.private_key_file` {}: {e}", path.display())))?,
        };
        if let Ok(key) = EncodingKey::from_ec_pem(pem.as_bytes()) {
            return Ok((key, Algorithm::ES256));
        }
        if let Ok(key) = EncodingKey::from_rsa_pem(pem.as_bytes()) {
            return Ok((key, Algorithm::RS256));
        }
        Err(OAuthError::Credentials(format!(
            "`{}` is not a PEM private key the gateway can sign with (an EC P-256 key for ES256, or an RSA key \
             for RS256)",
            self.config_key()
        )))
    }

    /// The algorithm this key signs with (to check against what the
    /// authorization server accepts).
    pub fn algorithm(&self) -> Result<&'static str, OAuthError> {
        Ok(match self.load()?.1 {
            Algorithm::RS256 => "RS256",
            _ => "ES256",
        })
    }
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    iat: u64,
    exp: u64,
    jti: String,
}

/// A client assertion for `client_id` addressed to `audience` (the
/// authorization server's issuer): iss = sub = the client, a short life, a
/// fresh `jti`.
pub fn client_assertion(client_id: &str, audience: &str, key: &PrivateKey) -> Result<String, OAuthError> {
    let (encoding, algorithm) = key.load()?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default();
    let claims = Claims {
        iss: client_id,
        sub: client_id,
        aud: audience,
        iat: now,
        exp: now + LIFETIME_SECS,
        jti: super::pkce::random_token(),
    };
    jsonwebtoken::encode(&Header::new(algorithm), &claims, &encoding).map_err(|e| {
        OAuthError::Credentials(format!("signing the client assertion with `{}` failed: {e}", key.config_key()))
    })
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use base64::Engine;

    /// A P-256 key made for these tests only.
    pub(in crate::oauth) const EC_KEY: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg9zeJKhfC1MnQ5r4D
xpY6ifbzWPw4D1sIQ/7ZdZNFyNWhRANCAATsdQ59colJY+vzSqpFHS1R61fEFbv7
f+86I1JLwUq2Vw2dQNmC7fosFPF1GnpDvfhS92hUMRRBYUr7dTOK5Jl1
-----END PRIVATE KEY-----
";

    /// An RSA key made for this test only.
    const RSA_KEY: &str = "-----BEGIN PRIVATE KEY-----
MIIEvAIBADANBgkqhkiG9w0BAQEFAASCBKYwggSiAgEAAoIBAQDd4NUL/Y/cslXj
YoXdwTV3DKEOU2j+FqmbR0nX8Pbz28hD3sshHYt3GuVPGx89v1WQytHtQYp4t0pu
+5i3bh5ztCe7oSkCqkzqsFPPANUpHHJHrB5ImikHiF5LaHYJwVXkXq8D+wyMurF5
T2QECrJ5fZYisJKLfUMy1Ixnwu1zUM9zlgz/4LIMEmzpJ7QW572bs8JYHcoYSs1n
huxniscwiHh6+5MUxvYut9q7MjIAkN8x6ja+iq+xYUa6gxgMgHQyeTBmHdsMNyoi
EnztpDPjw3gmQCkZbFo6HmR3QUt1gaffoqftD8vn9QvBRIlKSxE0lGvB72X0v9B9
sIVOZBkRAgMBAAECggEAUDXTTv5fX51ox0b6tev+9AawwokMz65JqkTfQR1vaUDu
6PpF3LbdkDU86JgZdy0QNcPcmDS1ZmZ8lhqGXumEQLfEFWRxevEt1TnhUlgutyn9
dkOWvxBb/MkjrYcaBPTLpD9Gbd3373geaIh20686TglEmU3T7HFgNaP5Dhm91Y2Y
tJYx2Drfs3Mfbh87YI1I0MUs9FCobFS0gUs73s5EVL3kCQAMLxAukfepSJxAJAvv
nddosrbTLELVrEW5DagWusp78nkhkSX4r+sf4NX9Dm1fg5eWJAQN6uhWdkNARW7a
GjnF8CBVJ90T/UDvQXj7HIrKp6/UoelUL2bL034wsQKBgQD5KEom2tSKuHKKYD9u
WwviUCUrpHMf3CedFBOSuEKKrQsLCvsQf1cjtbEOS01dyoeiYfwdT13vyY/1N0lV
cjON0CmfkmE9X7tJ+6YYRBG9rY7XhTPD+3p227BnWz3AbYlfuir1+UCmarodT1BD
9r4NuXpixHNZ2gk2S1ZOjo1Z9wKBgQDj+MFvTZTR+41a5I0PJcmEGHKmKLFQJqTu
Iev38G/WIguH5qTIF9/2wWXv1RoGu84oWW19CVm4///5/8C54PR3A8XKK+WLzHkA
zhS+Fng/yqUGcrmQbdZg5RU9kUxM6igW8uZiGh84w4b1mD0BvtLaXGTcJJKxGsdO
a/o6RM8jNwKBgGNvg+Br1wUhxXyaGtaE+YIxcBQxxkxBxYF34LPeW5gSpWSb1kTo
PTOgMHA+9zpmOKlCp6Ze5WNsMsqvbNHwCMkg+WuYtLwUt584Ejp++AGWAXrbyyP8
+gvzczxcepGQZZHRr5GJDxcbYvmNjMAC+ihqDIDcXBjQ3npPqLsjQyBTAoGAAJ2e
YB+UhFCqnBE79EuE1M+AF8TKXc4M6fu7eGr00l47K73KuiOeXjs9fD1WGaiOMPu0
2P6aeG5wkYtISPg7kMq40Qf3Ub5WoVLtKWpEHt/8PB05NROm3ZIg0Y6/5wFG5HD5
gFBTv0J/7c/gck3CogZX22RZ5RKOcT7HaTrgWFcCgYAsPTcdHarMlVdIIVbZjypL
f9D7vEM0gy9h7WHQ5oZHw7Ig/BiyX0eL/f2GiVssa6q3RZsz3QX8LTXQVlqPM108
MQkAZzzANAFj25bOAJsWQrHjij9pOltVoEa/65NNEzGirDV9XI4fQTcAgeM0lTNS
e7RfzfRhj9uZRn0InecR/A==
-----END PRIVATE KEY-----
";

    #[test]
    fn an_rsa_key_signs_rs256() {
        let key = PrivateKey::Pem(RSA_KEY.into());
        assert_eq!(key.algorithm().unwrap(), "RS256");
        let claims = claims_of(&client_assertion("cid", "https://as.example", &key).unwrap());
        assert_eq!(claims["sub"], "cid");
    }

    fn claims_of(jwt: &str) -> serde_json::Value {
        let payload = jwt.split('.').nth(1).unwrap();
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
    }

    #[test]
    fn an_assertion_names_the_client_twice_and_the_issuer_as_audience() {
        let key = PrivateKey::Pem(EC_KEY.into());
        assert_eq!(key.algorithm().unwrap(), "ES256");
        let jwt = client_assertion("cid", "https://as.example", &key).unwrap();
        let header = jwt.split('.').next().unwrap();
        let header: serde_json::Value =
            serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap();
        assert_eq!(header["alg"], "ES256");
        let claims = claims_of(&jwt);
        assert_eq!((claims["iss"].as_str(), claims["sub"].as_str()), (Some("cid"), Some("cid")));
        assert_eq!(claims["aud"], "https://as.example");
        assert!(claims["exp"].as_u64() > claims["iat"].as_u64());
        let again = claims_of(&client_assertion("cid", "https://as.example", &key).unwrap());
        assert_ne!(claims["jti"], again["jti"], "a fresh jti each time");
    }

    #[test]
    fn a_bad_key_is_named_by_its_config_key_and_never_quoted() {
        let error = client_assertion("c", "a", &PrivateKey::Pem("not-a-key-SECRET".into())).unwrap_err().to_string();
        assert!(error.contains("`oauth.private_key`") && !error.contains("SECRET"), "{error}");
        let missing = PrivateKey::File("/nonexistent/k.pem".into());
        let error = client_assertion("c", "a", &missing).unwrap_err().to_string();
        assert!(error.contains("`oauth.private_key_file` /nonexistent/k.pem"), "{error}");
        assert!(!format!("{:?}", PrivateKey::Pem(EC_KEY.into())).contains("MIGH"));
    }
}
