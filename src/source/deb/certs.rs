//! OpenSSL's subject-name hash, for the `/etc/ssl/certs/<hash>.<n>` links that
//! `update-ca-certificates` (through `openssl rehash`) would make. The hash is the first four
//! bytes, little-endian, of the SHA-1 of the subject's canonical encoding: each
//! relative distinguished name as a DER `SET`, no outer `SEQUENCE`, and every string value
//! converted to UTF-8, trimmed, inner whitespace runs collapsed to one space, ASCII
//! lowercased, and re-encoded as a `UTF8String`. Other value types are kept as they are.

use sha1::{Digest as _, Sha1};

/// One DER element: tag, and the bytes of header + content.
struct Tlv<'a> {
    tag: u8,
    content: &'a [u8],
    whole: &'a [u8],
}

fn read(input: &[u8]) -> Option<(Tlv<'_>, &[u8])> {
    let tag = *input.first()?;
    let first = *input.get(1)? as usize;
    let (len, header) = if first < 0x80 {
        (first, 2)
    } else {
        let n = first & 0x7f;
        if n == 0 || n > 4 {
            return None;
        }
        let mut len = 0usize;
        for i in 0..n {
            len = (len << 8) | *input.get(2 + i)? as usize;
        }
        (len, 2 + n)
    };
    let end = header.checked_add(len)?;
    let whole = input.get(..end)?;
    Some((Tlv { tag, content: &whole[header..], whole }, &input[end..]))
}

fn children(mut content: &[u8]) -> Option<Vec<Tlv<'_>>> {
    let mut out = Vec::new();
    while !content.is_empty() {
        let (t, rest) = read(content)?;
        out.push(t);
        content = rest;
    }
    Some(out)
}

fn encode(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len.to_be_bytes().into_iter().skip_while(|b| *b == 0).collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(content);
    out
}

/// The value as UTF-8 when it is one of the string types OpenSSL canonicalises.
fn as_utf8(tag: u8, bytes: &[u8]) -> Option<String> {
    match tag {
        0x0c | 0x13 | 0x16 | 0x1a => Some(String::from_utf8_lossy(bytes).into_owned()),
        0x14 => Some(bytes.iter().map(|&b| b as char).collect()),
        0x1e => {
            let units: Vec<u16> =
                bytes.chunks(2).map(|c| u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])).collect();
            Some(String::from_utf16_lossy(&units))
        }
        0x1c => Some(
            bytes
                .chunks(4)
                .filter(|c| c.len() == 4)
                .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
                .filter_map(char::from_u32)
                .collect(),
        ),
        _ => None,
    }
}

fn canon_string(s: &str) -> Vec<u8> {
    let space = |b: u8| matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r');
    let bytes = s.as_bytes();
    let start = bytes.iter().position(|&b| !space(b)).unwrap_or(bytes.len());
    let end = bytes.iter().rposition(|&b| !space(b)).map_or(start, |e| e + 1);
    let mut out = Vec::with_capacity(end - start);
    let mut i = start;
    while i < end {
        let b = bytes[i];
        if space(b) {
            out.push(b' ');
            while i < end && space(bytes[i]) {
                i += 1;
            }
        } else {
            out.push(b.to_ascii_lowercase());
            i += 1;
        }
    }
    out
}

/// The subject hash of a DER certificate, as `openssl x509 -hash` prints it.
pub fn subject_hash(der: &[u8]) -> Option<String> {
    let (cert, _) = read(der)?;
    let (tbs, _) = read(cert.content)?;
    let fields = children(tbs.content)?;
    // [0] version is optional; then serial, signature algorithm, issuer, validity, subject.
    let skip = usize::from(fields.first()?.tag == 0xa0);
    let subject = fields.get(skip + 4)?;
    let mut canon = Vec::new();
    for rdn in children(subject.content)? {
        let mut entries: Vec<Vec<u8>> = Vec::new();
        for atv in children(rdn.content)? {
            let parts = children(atv.content)?;
            let (oid, value) = (parts.first()?, parts.get(1)?);
            let value = match as_utf8(value.tag, value.content) {
                Some(s) => encode(0x0c, &canon_string(&s)),
                None => value.whole.to_vec(),
            };
            entries.push(encode(0x30, &[oid.whole, &value].concat()));
        }
        entries.sort();
        canon.extend(encode(0x31, &entries.concat()));
    }
    let md = Sha1::digest(&canon);
    Some(format!("{:08x}", u32::from_le_bytes([md[0], md[1], md[2], md[3]])))
}

/// The DER bytes of the first certificate in a PEM text.
pub fn pem_to_der(pem: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    let body: String = pem
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN CERTIFICATE-----"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .collect();
    base64::engine::general_purpose::STANDARD.decode(body.trim()).ok()
}
