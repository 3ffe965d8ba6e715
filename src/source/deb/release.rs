//! `InRelease`: the signed list of a suite's index files. The OpenPGP cleartext signature
//! must verify against the keyring (any key, primary or subkey) before anything in it is
//! believed; `Valid-Until` must not have passed unless the recipe opts out (old snapshots);
//! every index file fetched later is checked against the SHA256 listed here.

use super::control;
use pgp::composed::{CleartextSignedMessage, Deserializable, SignedPublicKey};
use pgp::types::KeyDetails;
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read keyring `{path}`")]
    Keyring {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("keyring `{path}` holds no usable OpenPGP public key: {message}")]
    BadKeyring { path: String, message: String },
    #[error("`{url}` is not an OpenPGP cleartext-signed file: {message}")]
    NotSigned { url: String, message: String },
    #[error("the signature of `{url}` does not verify with any key in {keyrings}")]
    BadSignature { url: String, keyrings: String },
    #[error("`{url}` expired at {valid_until} (Valid-Until); the archive may be stale or replayed")]
    Expired { url: String, valid_until: String },
    #[error("`{url}` has no `{field}` field")]
    Missing { url: String, field: &'static str },
    #[error(
        "`{url}` is signed for suite `{suite}` (codename `{codename}`), not `{asked}`: another release's InRelease, served under this suite's name, is refused"
    )]
    OtherSuite { url: String, asked: String, suite: String, codename: String },
}

/// The public keys of one or more keyring files (binary or ASCII-armored).
pub struct Keyring {
    pub keys: Vec<SignedPublicKey>,
    pub names: Vec<String>,
}

impl Keyring {
    pub fn load(paths: &[&Path]) -> Result<Keyring, Error> {
        let mut keys = Vec::new();
        for p in paths {
            let bytes = fs_err::read(p).map_err(|source| Error::Keyring { path: p.display().to_string(), source })?;
            let bad =
                |e: pgp::errors::Error| Error::BadKeyring { path: p.display().to_string(), message: e.to_string() };
            let found: Vec<SignedPublicKey> = if bytes.starts_with(b"-----BEGIN") {
                let text = String::from_utf8_lossy(&bytes).into_owned();
                SignedPublicKey::from_string_many(&text).map_err(bad)?.0.filter_map(Result::ok).collect()
            } else {
                SignedPublicKey::from_bytes_many(&bytes[..]).map_err(bad)?.filter_map(Result::ok).collect()
            };
            if found.is_empty() {
                return Err(Error::BadKeyring { path: p.display().to_string(), message: "no keys found".into() });
            }
            keys.extend(found);
        }
        Ok(Keyring { keys, names: paths.iter().map(|p| format!("`{}`", p.display())).collect() })
    }
}

/// A verified `InRelease`.
#[derive(Debug, Clone)]
pub struct Release {
    pub fields: control::Paragraph,
    /// path → (sha256 hex, size)
    pub sha256: BTreeMap<String, (String, u64)>,
    /// Fingerprint of the key whose signature verified.
    pub signed_by: String,
    pub by_hash: bool,
}

/// Verifies `text` (the body of `url`) and parses it. `now` is Unix seconds.
pub fn verify(url: &str, text: &str, keyring: &Keyring, check_valid_until: bool, now: u64) -> Result<Release, Error> {
    let (msg, _) = CleartextSignedMessage::from_string(text)
        .map_err(|e| Error::NotSigned { url: url.into(), message: e.to_string() })?;
    let mut signed_by = None;
    'keys: for key in &keyring.keys {
        if msg.verify(key).is_ok() {
            signed_by = Some(key.fingerprint());
            break;
        }
        for sub in &key.public_subkeys {
            if msg.verify(sub).is_ok() {
                signed_by = Some(sub.fingerprint());
                break 'keys;
            }
        }
    }
    let Some(fp) = signed_by else {
        return Err(Error::BadSignature { url: url.into(), keyrings: keyring.names.join(", ") });
    };
    // Only the signed text counts; never the unsigned parts of the file.
    let signed = msg.signed_text().replace("\r\n", "\n");
    let fields =
        control::parse(&signed).into_iter().next().ok_or(Error::Missing { url: url.into(), field: "Suite" })?;
    if check_valid_until
        && let Some(v) = fields.get("Valid-Until")
        && parse_date(v).is_some_and(|t| t < now)
    {
        return Err(Error::Expired { url: url.into(), valid_until: v.into() });
    }
    let list = fields.get("SHA256").ok_or(Error::Missing { url: url.into(), field: "SHA256" })?;
    let mut sha256 = BTreeMap::new();
    for line in list.lines() {
        let parts: Vec<&str> = line.split_whitespace().collect();
        if let [hash, size, path] = parts[..]
            && let Ok(size) = size.parse()
        {
            sha256.insert(path.to_string(), (hash.to_string(), size));
        }
    }
    let by_hash = fields.get("Acquire-By-Hash").is_some_and(|v| v.eq_ignore_ascii_case("yes"));
    Ok(Release { fields, sha256, signed_by: hex::encode_upper(fp.as_bytes()), by_hash })
}

/// Whether a verified release is the suite that was asked for: its signed `Suite` or
/// `Codename` must be that name (`bookworm` is Debian's `stable`, codename `bookworm`), as
/// apt requires. A mirror could otherwise answer `dists/bookworm/InRelease` with another
/// suite's file — an older release, signed by the same keys — and its packages would be
/// installed as bookworm's. A release naming neither field (some small archives) cannot be
/// told apart and is taken.
pub fn check_suite(url: &str, release: &Release, asked: &str) -> Result<(), Error> {
    let (suite, codename) = (release.fields.get("Suite"), release.fields.get("Codename"));
    // `buster/updates` (the old security layout) is codename `buster`.
    let names = [asked, asked.split('/').next().unwrap_or(asked)];
    let named = |field: Option<&str>| field.is_some_and(|f| names.contains(&f));
    if (suite.is_none() && codename.is_none()) || named(suite) || named(codename) {
        return Ok(());
    }
    Err(Error::OtherSuite {
        url: url.into(),
        asked: asked.into(),
        suite: suite.unwrap_or("").escape_debug().to_string(),
        codename: codename.unwrap_or("").escape_debug().to_string(),
    })
}

/// RFC 2822 dates as in Release files: `Sat, 11 Jul 2026 10:16:37 UTC`.
pub fn parse_date(s: &str) -> Option<u64> {
    let parts: Vec<&str> = s.split_whitespace().collect();
    let parts = if parts.first().is_some_and(|p| p.ends_with(',')) { &parts[1..] } else { &parts[..] };
    let [day, month, year, time, ..] = parts[..] else { return None };
    let month = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        .iter()
        .position(|m| *m == month)? as i64
        + 1;
    let (day, year): (i64, i64) = (day.parse().ok()?, year.parse().ok()?);
    let hms: Vec<i64> = time.split(':').map(|x| x.parse().ok()).collect::<Option<_>>()?;
    let [h, m, sec] = hms[..] else { return None };
    // Days from civil (Howard Hinnant).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    u64::try_from(days * 86400 + h * 3600 + m * 60 + sec).ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn release_dates() {
        assert_eq!(super::parse_date("Sat, 11 Jul 2026 10:16:37 UTC"), Some(1_783_764_997));
        assert_eq!(super::parse_date("Thu, 01 Jan 1970 00:00:00 UTC"), Some(0));
        assert_eq!(super::parse_date("garbage"), None);
    }

    /// A release is taken for the suite asked when its signed `Suite` or `Codename` names it
    /// (`buster/updates` by its codename), or when it names neither; never when it names another.
    #[test]
    fn a_release_must_be_the_suite_asked_for() {
        let release = |fields: &str| super::Release {
            fields: crate::source::deb::control::parse(fields).remove(0),
            sha256: Default::default(),
            signed_by: String::new(),
            by_hash: false,
        };
        let bookworm = release("Suite: stable\nCodename: bookworm\n");
        for asked in ["stable", "bookworm"] {
            assert!(super::check_suite("u", &bookworm, asked).is_ok(), "{asked}");
        }
        assert!(super::check_suite("u", &release("Suite: oldoldstable\nCodename: buster\n"), "buster/updates").is_ok());
        assert!(super::check_suite("u", &release("Origin: small\n"), "anything").is_ok());
        let err = super::check_suite("u", &release("Suite: oldstable\nCodename: bullseye\n"), "bookworm").unwrap_err();
        assert!(
            err.to_string().contains("signed for suite `oldstable` (codename `bullseye`), not `bookworm`"),
            "{err}"
        );
    }
}
