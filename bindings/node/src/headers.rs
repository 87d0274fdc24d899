//! Header lists between JavaScript (flat `[name, value, name, value, ...]` arrays) and core.

use quiver_core::{HeaderMap, Version};

/// A header value as JavaScript sees it: bytes as Latin-1, the way Node's `http` decodes them.
fn latin1(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        // Almost always ASCII, where Latin-1 and UTF-8 agree.
        Ok(s) if bytes.is_ascii() => s.to_owned(),
        _ => bytes.iter().map(|&b| char::from(b)).collect(),
    }
}

/// A header map as a flat `[name, value, ...]` list, names lower-case, repeats kept in order.
pub(crate) fn flatten(headers: &HeaderMap) -> Vec<String> {
    let mut out = Vec::with_capacity(headers.len() * 2);
    for (name, value) in headers {
        out.push(name.as_str().to_owned());
        out.push(latin1(value.as_bytes()));
    }
    out
}

/// Pairs of a flat list (a trailing odd name is ignored; `index.js` never sends one).
pub(crate) fn pairs(flat: &[String]) -> impl Iterator<Item = (&str, &str)> {
    flat.chunks_exact(2).map(|p| (p[0].as_str(), p[1].as_str()))
}

/// The HTTP version as Node's `httpVersion` spells it.
pub(crate) fn version(v: Version) -> &'static str {
    match v {
        Version::HTTP_09 => "0.9",
        Version::HTTP_10 => "1.0",
        Version::HTTP_11 => "1.1",
        Version::HTTP_2 => "2.0",
        Version::HTTP_3 => "3.0",
        _ => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_decode_as_latin1_and_repeats_stay() {
        let mut map = HeaderMap::new();
        map.append("x-a", "1".parse().unwrap());
        map.append("x-a", "2".parse().unwrap());
        map.append(
            "x-latin",
            quiver_core::HeaderValue::from_bytes(b"caf\xe9").unwrap(),
        );
        assert_eq!(flatten(&map), ["x-a", "1", "x-a", "2", "x-latin", "café"]);
        let flat: Vec<String> = ["a", "1", "b", "2"].map(String::from).into();
        assert_eq!(pairs(&flat).collect::<Vec<_>>(), [("a", "1"), ("b", "2")]);
        assert_eq!(version(Version::HTTP_2), "2.0");
    }
}
