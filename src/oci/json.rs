//! Canonical JSON: object keys sorted by their UTF-8 bytes, no insignificant whitespace.
//! Written here rather than relied on from serde_json's map type, whose key order changes
//! if any crate in the build enables its `preserve_order` feature.

use serde_json::Value;

pub fn canonical(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    write(value, &mut out);
    out
}

fn write(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push(b'{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(serde_json::to_string(k).expect("string").as_bytes());
                out.push(b':');
                write(&map[k], out);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write(v, out);
            }
            out.push(b']');
        }
        scalar => out.extend_from_slice(serde_json::to_string(scalar).expect("scalar").as_bytes()),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn keys_are_sorted_at_every_level() {
        let v = serde_json::json!({"b": 1, "a": {"d": [{"z": 1, "y": "é"}], "c": null}});
        assert_eq!(String::from_utf8(super::canonical(&v)).unwrap(), r#"{"a":{"c":null,"d":[{"y":"é","z":1}]},"b":1}"#);
    }
}
