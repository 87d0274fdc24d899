//! The cross-language behaviour cases (`tests/server/scenarios.tsv`), parsed: every suite (Rust,
//! C, Python, Node) runs each case against every protocol it names. The file's header says what
//! each column means.

/// The table itself, as text (the other languages read the file).
pub const TABLE: &str = include_str!("../scenarios.tsv");

/// The protocols a case runs on when it names `*`.
pub const ALL_PROTOCOLS: &[&str] = &["http1", "https1", "h2", "h2c", "h3"];

/// What a case expects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expect {
    /// A response with this status.
    Status(u16),
    /// An error of this kind (its stable name).
    Error(String),
}

/// One check on a response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Check {
    /// N bytes of the test server's body pattern.
    Pattern(usize),
    /// Exactly this body.
    Text(String),
    /// A body of this length.
    Len(usize),
    /// A body containing this text.
    Contains(String),
    /// A response header with this value.
    Header(String, String),
    /// This many redirects followed on the way (the response's history).
    History(usize),
    /// The final URL (after redirects) ends with this text.
    UrlEnds(String),
}

/// One row of the table.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// The case's unique name.
    pub name: String,
    /// The protocols it runs on (`http1`, `https1`, `h2`, `h2c`, `h3`).
    pub protocols: Vec<String>,
    /// The request method, as given.
    pub method: String,
    /// A path on the protocol's base URL, or an absolute URL.
    pub target: String,
    /// Request headers, in order.
    pub headers: Vec<(String, String)>,
    /// The request body, if any.
    pub body: Option<String>,
    /// A per-request timeout, if any.
    pub timeout_ms: Option<u64>,
    /// What must happen.
    pub expect: Expect,
    /// What the response must also show.
    pub checks: Vec<Check>,
}

impl Scenario {
    /// The URL for a protocol whose base URL is `base` (`http://127.0.0.1:PORT`).
    pub fn url(&self, base: &str) -> String {
        if self.target.starts_with('/') {
            format!("{base}{}", self.target)
        } else {
            self.target.clone()
        }
    }
}

/// Undoes the table's escapes (`\r`, `\n`, `\t`, `\\`).
pub fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('r') => out.push('\r'),
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

fn cell(s: &str) -> Option<&str> {
    (s != "-").then_some(s)
}

/// Every case of the table.
pub fn scenarios() -> Vec<Scenario> {
    TABLE
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|line| {
            let cols: Vec<&str> = line.split('\t').collect();
            assert_eq!(
                cols.len(),
                9,
                "scenarios.tsv: a row needs 9 columns: {line}"
            );
            let protocols = match cols[1] {
                "*" => ALL_PROTOCOLS.iter().map(|p| p.to_string()).collect(),
                list => list.split(',').map(str::to_owned).collect(),
            };
            let headers = cell(cols[4])
                .map(|h| {
                    h.split('|')
                        .map(|pair| {
                            let (n, v) = pair.split_once('=').expect("a header is name=value");
                            (n.to_owned(), unescape(v))
                        })
                        .collect()
                })
                .unwrap_or_default();
            let expect = match cols[7].split_once('=') {
                Some(("status", n)) => Expect::Status(n.parse().expect("a status")),
                Some(("error", kind)) => Expect::Error(kind.to_owned()),
                _ => panic!("scenarios.tsv: bad expect `{}`", cols[7]),
            };
            let checks = cell(cols[8])
                .map(|c| {
                    c.split('|')
                        .map(|check| match check.split_once('=') {
                            Some(("pattern", n)) => Check::Pattern(n.parse().unwrap()),
                            Some(("text", t)) => Check::Text(unescape(t)),
                            Some(("len", n)) => Check::Len(n.parse().unwrap()),
                            Some(("contains", t)) => Check::Contains(unescape(t)),
                            Some(("history", n)) => Check::History(n.parse().unwrap()),
                            Some(("url_ends", t)) => Check::UrlEnds(unescape(t)),
                            Some(("header", h)) => {
                                let (n, v) = h.split_once(':').expect("header=NAME:VALUE");
                                Check::Header(n.to_owned(), v.to_owned())
                            }
                            _ => panic!("scenarios.tsv: bad check `{check}`"),
                        })
                        .collect()
                })
                .unwrap_or_default();
            Scenario {
                name: cols[0].to_owned(),
                protocols,
                method: cols[2].to_owned(),
                target: cols[3].to_owned(),
                headers,
                body: cell(cols[5]).map(unescape),
                timeout_ms: cell(cols[6]).map(|t| t.parse().expect("a timeout in ms")),
                expect,
                checks,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_parses_and_names_are_unique() {
        let all = scenarios();
        assert!(all.len() >= 20);
        let mut names: Vec<&str> = all.iter().map(|s| s.name.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), all.len(), "duplicate names");
        let crlf = all.iter().find(|s| s.name == "header_crlf").unwrap();
        assert_eq!(crlf.headers[0].1, "a\r\nx-injected: 1");
        assert!(all.iter().all(|s| !s.protocols.is_empty()));
    }
}
