//! Signing keys: ECDSA P-256 private keys as PEM — cosign's password-protected
//! `ENCRYPTED SIGSTORE PRIVATE KEY` (scrypt, then NaCl secretbox, around PKCS#8), a plain
//! PKCS#8 `PRIVATE KEY` or a SEC1 `EC PRIVATE KEY` (as `openssl` writes them) — and the
//! public key as the PKIX `PUBLIC KEY` PEM cosign verifies with.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};
use std::path::{Path, PathBuf};

/// A P-256 SubjectPublicKeyInfo up to the point: `SEQUENCE { SEQUENCE { id-ecPublicKey,
/// prime256v1 }, BIT STRING` (the 65-byte uncompressed point follows).
const SPKI_P256_PREFIX: &str = "3059301306072a8648ce3d020106082a8648ce3d030107034200";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read the key `{path}`")]
    Read { path: PathBuf, source: std::io::Error },
    #[error(
        "the signing key `{path}` is not a PEM private key (expected `ENCRYPTED SIGSTORE PRIVATE KEY`, `PRIVATE KEY` or `EC PRIVATE KEY`)"
    )]
    NotPem { path: PathBuf },
    #[error(
        "the signing key `{path}` is a `{label}`; assemble signs with ECDSA P-256 keys in cosign's format, PKCS#8 or SEC1 (convert with `openssl pkcs8 -topk8 -nocrypt`)"
    )]
    Unsupported { path: PathBuf, label: String },
    #[error("the signing key `{path}` cannot be decrypted: {why}")]
    Decrypt { path: PathBuf, why: String },
    #[error("the key `{path}` is not an ECDSA P-256 key ({why})")]
    NotP256 { path: PathBuf, why: String },
}

/// A key that signs (ECDSA P-256, SHA-256, ASN.1 DER signatures).
pub struct Signer {
    pair: EcdsaKeyPair,
    rng: SystemRandom,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signer(***)")
    }
}

impl Signer {
    /// The key at `path`; `password` opens an encrypted one (cosign's: empty is allowed).
    pub fn load(path: &Path, password: Option<&str>) -> Result<Signer, Error> {
        let text = fs_err::read_to_string(path).map_err(|source| Error::Read { path: path.to_path_buf(), source })?;
        let (label, der) = pem(&text).ok_or_else(|| Error::NotPem { path: path.to_path_buf() })?;
        let pkcs8 = match label.as_str() {
            "PRIVATE KEY" => der,
            "EC PRIVATE KEY" => sec1_to_pkcs8(&der),
            "ENCRYPTED SIGSTORE PRIVATE KEY" | "ENCRYPTED COSIGN PRIVATE KEY" => {
                decrypt_sigstore(&der, password.unwrap_or(""))
                    .map_err(|why| Error::Decrypt { path: path.to_path_buf(), why })?
            }
            other => return Err(Error::Unsupported { path: path.to_path_buf(), label: other.to_string() }),
        };
        let rng = SystemRandom::new();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &pkcs8, &rng)
            .map_err(|e| Error::NotP256 { path: path.to_path_buf(), why: e.to_string() })?;
        Ok(Signer { pair, rng })
    }

    /// An ASN.1 DER ECDSA signature over SHA-256 of `message`.
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        self.pair.sign(&self.rng, message).expect("ECDSA signing with a valid key").as_ref().to_vec()
    }

    /// The public key as a PKIX `PUBLIC KEY` PEM (what `cosign verify --key` reads).
    pub fn public_pem(&self) -> String {
        // SubjectPublicKeyInfo { id-ecPublicKey, prime256v1 } and the uncompressed point.
        let mut der = hex::decode(SPKI_P256_PREFIX).expect("static");
        der.extend_from_slice(self.pair.public_key().as_ref());
        let body = B64.encode(der);
        let lines: Vec<&str> = body.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).expect("base64")).collect();
        format!("-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n", lines.join("\n"))
    }
}

/// A public key that checks signatures: ECDSA P-256, from a PKIX `PUBLIC KEY` PEM (what
/// `cosign generate-key-pair` and `openssl ec -pubout` write).
#[derive(Debug, Clone)]
pub struct PublicKey {
    point: Vec<u8>,
}

impl PublicKey {
    pub fn load(path: &Path) -> Result<PublicKey, Error> {
        let text = fs_err::read_to_string(path).map_err(|source| Error::Read { path: path.to_path_buf(), source })?;
        let (label, der) = pem(&text).ok_or_else(|| Error::NotPem { path: path.to_path_buf() })?;
        if label != "PUBLIC KEY" {
            return Err(Error::Unsupported { path: path.to_path_buf(), label });
        }
        let prefix = hex::decode(SPKI_P256_PREFIX).expect("static");
        match der.strip_prefix(prefix.as_slice()) {
            Some(point) if point.len() == 65 && point[0] == 4 => Ok(PublicKey { point: point.to_vec() }),
            _ => Err(Error::NotP256 { path: path.to_path_buf(), why: "not a P-256 SubjectPublicKeyInfo".into() }),
        }
    }

    /// Whether `signature` (ASN.1 DER) is this key's over SHA-256 of `message`.
    pub fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_ASN1, &self.point)
            .verify(message, signature)
            .is_ok()
    }
}

/// The first PEM block: its label and decoded body.
fn pem(text: &str) -> Option<(String, Vec<u8>)> {
    let start = text.find("-----BEGIN ")?;
    let rest = &text[start + 11..];
    let label = rest[..rest.find("-----")?].to_string();
    let body_start = rest.find("-----")? + 5;
    let end = body_start + rest[body_start..].find(&format!("-----END {label}-----"))?;
    let body: String = rest[body_start..end].chars().filter(|c| !c.is_whitespace()).collect();
    Some((label, B64.decode(body).ok()?))
}

/// A SEC1 `ECPrivateKey` (P-256) wrapped as PKCS#8 `PrivateKeyInfo`.
fn sec1_to_pkcs8(sec1: &[u8]) -> Vec<u8> {
    let algorithm = hex::decode("301306072a8648ce3d020106082a8648ce3d030107").expect("static");
    let mut inner = vec![0x02, 0x01, 0x00];
    inner.extend_from_slice(&algorithm);
    inner.push(0x04);
    inner.extend(der_len(sec1.len()));
    inner.extend_from_slice(sec1);
    let mut out = vec![0x30];
    out.extend(der_len(inner.len()));
    out.extend(inner);
    out
}

fn der_len(n: usize) -> Vec<u8> {
    match n {
        0..=0x7f => vec![n as u8],
        0x80..=0xff => vec![0x81, n as u8],
        _ => vec![0x82, (n >> 8) as u8, n as u8],
    }
}

/// cosign's encrypted key: JSON with the scrypt parameters and salt, the secretbox nonce and
/// the ciphertext; the plaintext is the PKCS#8 DER.
fn decrypt_sigstore(json: &[u8], password: &str) -> Result<Vec<u8>, String> {
    use crypto_secretbox::aead::{Aead, KeyInit};
    let v: serde_json::Value = serde_json::from_slice(json).map_err(|e| format!("not cosign's JSON ({e})"))?;
    if v["kdf"]["name"] != "scrypt" || v["cipher"]["name"] != "nacl/secretbox" {
        return Err(format!("unknown kdf `{}` or cipher `{}`", v["kdf"]["name"], v["cipher"]["name"]));
    }
    let field = |p: &serde_json::Value, what: &str| -> Result<Vec<u8>, String> {
        B64.decode(p.as_str().ok_or(format!("no {what}"))?).map_err(|e| format!("{what}: {e}"))
    };
    let salt = field(&v["kdf"]["salt"], "salt")?;
    let nonce = field(&v["cipher"]["nonce"], "nonce")?;
    let ciphertext = field(&v["ciphertext"], "ciphertext")?;
    let n = v["kdf"]["params"]["N"].as_u64().unwrap_or(0);
    let (r, p) = (v["kdf"]["params"]["r"].as_u64().unwrap_or(0), v["kdf"]["params"]["p"].as_u64().unwrap_or(0));
    // Memory is 128·r·N bytes: at most 64 MiB (cosign's own N = 2^16, r = 8), and p ≤ 4, so a
    // hostile key file cannot take gigabytes or minutes.
    let memory = 128u128 * r as u128 * n as u128;
    if !n.is_power_of_two() || n < 2 || r == 0 || memory > 64 << 20 || !(1..=4).contains(&p) || nonce.len() != 24 {
        return Err("scrypt parameters or nonce out of range".into());
    }
    let params = scrypt::Params::new(n.trailing_zeros() as u8, r as u32, p as u32, 32).map_err(|e| e.to_string())?;
    let mut key = [0u8; 32];
    scrypt::scrypt(password.as_bytes(), &salt, &params, &mut key).map_err(|e| e.to_string())?;
    let cipher = crypto_secretbox::XSalsa20Poly1305::new(&key.into());
    cipher
        .decrypt(nonce.as_slice().into(), ciphertext.as_slice())
        .map_err(|_| "wrong password (set ASSEMBLE_SIGN_PASSWORD or COSIGN_PASSWORD), or a damaged key".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_sigstore_key_parameters_are_refused() {
        let json = |n: u64| {
            format!(
                "{{\"kdf\":{{\"name\":\"scrypt\",\"params\":{{\"N\":{n},\"r\":8,\"p\":1}},\"salt\":\"AAAA\"}},\"cipher\":{{\"name\":\"nacl/secretbox\",\"nonce\":\"{}\"}},\"ciphertext\":\"AAAA\"}}",
                B64.encode([0u8; 24])
            )
        };
        let started = std::time::Instant::now();
        assert_eq!(
            decrypt_sigstore(json(1 << 40).as_bytes(), "x"),
            Err("scrypt parameters or nonce out of range".into())
        );
        assert_eq!(decrypt_sigstore(json(1000).as_bytes(), "x"), Err("scrypt parameters or nonce out of range".into()));
        // 2^20 with r = 8 would take a GiB.
        assert_eq!(
            decrypt_sigstore(json(1 << 20).as_bytes(), "x"),
            Err("scrypt parameters or nonce out of range".into())
        );
        assert!(started.elapsed().as_secs() < 5);
        // In range: a wrong password (here, a ciphertext that is not one) is told as such.
        assert!(decrypt_sigstore(json(1 << 4).as_bytes(), "x").unwrap_err().starts_with("wrong password"));
    }

    #[test]
    fn pem_with_an_end_before_its_body_is_refused_not_a_panic() {
        assert!(pem("-----BEGIN X-----END X-----").is_none());
        assert!(pem("-----BEGIN X-----\nQUJD\n-----END X-----\n").is_some_and(|(l, b)| l == "X" && b == b"ABC"));
    }

    #[test]
    fn sec1_keys_are_wrapped_as_pkcs8() {
        let der = sec1_to_pkcs8(&[0x30, 0x03, 0x02, 0x01, 0x01]);
        assert_eq!(hex::encode(der), "301f020100301306072a8648ce3d020106082a8648ce3d03010704053003020101");
    }
}
