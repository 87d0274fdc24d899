//! Pool rules: origin patterns (exact, one-label wildcard, default) and the validated table
//! that picks a pool's options by specificity.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use super::{PoolOptions, PoolSettings};
use crate::error::{Error, Result};
use crate::origin::{Host, Origin, Scheme};

/// Which origins a rule applies to.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum OriginPattern {
    /// Exactly one origin, e.g. `https://api.example.com` (port defaulted from the scheme).
    Exact(Origin),
    /// `scheme://*.suffix:port`: the `*` matches exactly one leftmost label.
    Wildcard {
        /// The scheme that must match.
        scheme: Scheme,
        /// The host after `*.`, lower-case.
        suffix: String,
        /// The port that must match.
        port: u16,
    },
}

impl OriginPattern {
    /// Parses `https://api.example.com`, `http://[::1]:8080` or `https://*.example.com`.
    pub fn parse(pattern: &str) -> Result<OriginPattern> {
        let invalid = |why: String| Error::invalid_config(format!("pool rule `{pattern}`: {why}"));
        if let Some((scheme, rest)) = pattern.split_once("://") {
            if let Some(rest) = rest.strip_prefix("*.") {
                let scheme = Scheme::parse(scheme).map_err(|e| invalid(e.message().to_owned()))?;
                let rest = rest.trim_end_matches('/');
                let (host, port) = match rest.rsplit_once(':') {
                    Some((h, p)) => (
                        h,
                        p.parse::<u16>()
                            .ok()
                            .filter(|p| *p != 0)
                            .ok_or_else(|| invalid(format!("bad port `{p}`")))?,
                    ),
                    None => (rest, scheme.default_port()),
                };
                // Reuse the URL parser to validate and normalise the suffix.
                let probe = Origin::parse(&format!("{}://x.{host}", scheme.as_str()))
                    .map_err(|e| invalid(e.message().to_owned()))?;
                let suffix = match probe.host() {
                    Host::Name(n) => match n.strip_prefix("x.") {
                        Some(suffix) if !suffix.is_empty() => suffix.to_owned(),
                        _ => return Err(invalid("a wildcard needs a DNS suffix".into())),
                    },
                    Host::Ip(_) => return Err(invalid("a wildcard needs a DNS suffix".into())),
                };
                return Ok(OriginPattern::Wildcard {
                    scheme,
                    suffix,
                    port,
                });
            }
        }
        Origin::parse(pattern)
            .map(OriginPattern::Exact)
            .map_err(|e| invalid(e.message().to_owned()))
    }

    fn scheme(&self) -> Scheme {
        match self {
            OriginPattern::Exact(o) => o.scheme(),
            OriginPattern::Wildcard { scheme, .. } => *scheme,
        }
    }
}

impl fmt::Display for OriginPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OriginPattern::Exact(o) => o.fmt(f),
            OriginPattern::Wildcard {
                scheme,
                suffix,
                port,
            } => write!(f, "{}://*.{}:{}", scheme.as_str(), suffix, port),
        }
    }
}

/// A validated rule: where it came from and the options it resolves to.
#[derive(Debug)]
pub(crate) struct ResolvedRule {
    /// `default` or the pattern as the caller wrote it.
    pub name: String,
    pub options: Arc<PoolOptions>,
    /// The credentials this rule sets itself (the default rule: the client-wide ones).
    pub auth: Option<crate::request::Auth>,
}

/// The client's validated rule table: exact > wildcard > default.
#[derive(Debug)]
pub(crate) struct RuleTable {
    exact: HashMap<Origin, Arc<ResolvedRule>>,
    wildcard: HashMap<(Scheme, String, u16), Arc<ResolvedRule>>,
    default: Arc<ResolvedRule>,
}

impl RuleTable {
    /// Resolves and validates every rule; the error names the rule and the option.
    pub(crate) fn build(
        defaults: &PoolSettings,
        rules: &[(String, PoolSettings)],
    ) -> Result<RuleTable> {
        let resolve = |name: &str, scheme: Option<Scheme>, rule: Option<&PoolSettings>| {
            let mut options = PoolOptions::default();
            defaults.apply_to(&mut options);
            if let Some(rule) = rule {
                rule.apply_to(&mut options);
            }
            let in_rule =
                |e: Error| Error::invalid_config(format!("pool rule `{name}`: {}", e.message()));
            options.validate(scheme).map_err(in_rule)?;
            let auth = rule.unwrap_or(defaults).own_auth().map_err(in_rule)?;
            Ok::<_, Error>(Arc::new(ResolvedRule {
                name: name.to_owned(),
                options: Arc::new(options),
                auth,
            }))
        };
        let default = resolve("default", None, None)?;
        let mut table = RuleTable {
            exact: HashMap::new(),
            wildcard: HashMap::new(),
            default,
        };
        for (pattern, settings) in rules {
            let parsed = OriginPattern::parse(pattern)?;
            for (option, set) in [
                (
                    "max_total_connections",
                    settings.max_total_connections.is_some(),
                ),
                ("cookies", settings.cookies.is_some()),
            ] {
                if set {
                    return Err(Error::invalid_config(format!(
                        "pool rule `{pattern}`: option `{option}` is client-wide; set it without a pattern"
                    )));
                }
            }
            let rule = resolve(pattern, Some(parsed.scheme()), Some(settings))?;
            let duplicate = match parsed {
                OriginPattern::Exact(origin) => table.exact.insert(origin, rule).is_some(),
                OriginPattern::Wildcard {
                    scheme,
                    suffix,
                    port,
                } => table
                    .wildcard
                    .insert((scheme, suffix, port), rule)
                    .is_some(),
            };
            if duplicate {
                return Err(Error::invalid_config(format!(
                    "pool rule `{pattern}` is given twice"
                )));
            }
        }
        Ok(table)
    }

    /// The most specific rule for `origin`.
    pub(crate) fn lookup(&self, origin: &Origin) -> &Arc<ResolvedRule> {
        if let Some(rule) = self.exact.get(origin) {
            return rule;
        }
        if let (Host::Name(name), false) = (origin.host(), self.wildcard.is_empty()) {
            if let Some((_, suffix)) = name.split_once('.') {
                let key = (origin.scheme(), suffix.to_owned(), origin.port());
                if let Some(rule) = self.wildcard.get(&key) {
                    return rule;
                }
            }
        }
        &self.default
    }

    /// The `default` rule: the client-wide options and credentials.
    pub(crate) fn default_rule(&self) -> &Arc<ResolvedRule> {
        &self.default
    }

    /// The client-wide options (the `default` rule's).
    pub(crate) fn defaults(&self) -> &Arc<PoolOptions> {
        &self.default.options
    }

    /// The rules other than `default` (for validation that needs every rule).
    pub(crate) fn all(&self) -> impl Iterator<Item = &Arc<ResolvedRule>> {
        std::iter::once(&self.default)
            .chain(self.exact.values())
            .chain(self.wildcard.values())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Protocol;
    use crate::error::ErrorKind;
    use std::path::PathBuf;
    use std::time::Duration;

    fn origin(s: &str) -> Origin {
        Origin::parse(s).unwrap()
    }

    #[test]
    fn rule_precedence_is_exact_then_wildcard_then_default() {
        let defaults = PoolSettings::default().size(5);
        let rules = vec![
            (
                "https://api.example.com".to_owned(),
                PoolSettings::default().size(50),
            ),
            (
                "https://*.example.com".to_owned(),
                PoolSettings::default().size(20),
            ),
            (
                "http://*.example.com:8080".to_owned(),
                PoolSettings::default().size(7),
            ),
        ];
        let table = RuleTable::build(&defaults, &rules).unwrap();
        let size = |o: &str| table.lookup(&origin(o)).options.size;
        assert_eq!(size("https://api.example.com"), 50);
        assert_eq!(size("https://api.example.com:443"), 50);
        assert_eq!(size("https://www.example.com"), 20);
        // One label only: a deeper host falls to default.
        assert_eq!(size("https://a.b.example.com"), 5);
        // The apex is not matched by the wildcard.
        assert_eq!(size("https://example.com"), 5);
        // Scheme and port must match.
        assert_eq!(size("http://www.example.com"), 5);
        assert_eq!(size("https://www.example.com:8443"), 5);
        assert_eq!(size("http://www.example.com:8080"), 7);
        assert_eq!(table.lookup(&origin("https://other.org")).name, "default");
    }

    #[test]
    fn rule_options_overlay_client_defaults() {
        let defaults = PoolSettings::default().checkout_timeout(Duration::from_millis(250));
        let rules = vec![(
            "https://a.example".to_owned(),
            PoolSettings::default().size(3),
        )];
        let table = RuleTable::build(&defaults, &rules).unwrap();
        let rule = table.lookup(&origin("https://a.example"));
        assert_eq!(rule.options.size, 3);
        assert_eq!(rule.options.checkout_timeout, Duration::from_millis(250));
        assert_eq!(rule.options.idle_timeout, Duration::from_secs(30));
    }

    #[test]
    fn bad_values_name_rule_and_option() {
        let rules = vec![(
            "https://a.example".to_owned(),
            PoolSettings::default().size(0),
        )];
        let err = RuleTable::build(&PoolSettings::default(), &rules).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidConfig);
        assert!(err.message().contains("https://a.example"), "{err}");
        assert!(err.message().contains("size"), "{err}");

        let mut s = PoolSettings::default();
        let err = s.set("size", "ten").unwrap_err();
        assert!(err.message().contains("size"), "{err}");
        let err = s.set("nope", 1).unwrap_err();
        assert!(err.message().contains("unknown option `nope`"), "{err}");
        s.set("checkout_timeout", 1500).unwrap();
        assert_eq!(s.checkout_timeout, Some(Duration::from_millis(1500)));
        s.set("request_timeout", 0).unwrap();
        assert_eq!(s.request_timeout, Some(None));
        s.set("protocol", "HTTP1").unwrap();
        assert_eq!(s.protocol, Some(Protocol::Http1));

        let rules = vec![(
            "http://a.example".to_owned(),
            PoolSettings::default().protocol(Protocol::Http3),
        )];
        let err = RuleTable::build(&PoolSettings::default(), &rules).unwrap_err();
        assert!(err.message().contains("http3"), "{err}");

        let err = RuleTable::build(
            &PoolSettings::default().client_cert(Some(PathBuf::from("/x"))),
            &[],
        )
        .unwrap_err();
        assert!(err.message().contains("client_key"), "{err}");

        for bad in [
            "ftp://*.a.example",
            "https://*.",
            "https://a.example/path",
            "nonsense",
        ] {
            let rules = vec![(bad.to_owned(), PoolSettings::default())];
            let err = RuleTable::build(&PoolSettings::default(), &rules).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidConfig, "{bad}");
            assert!(err.message().contains(bad), "{err}");
        }
    }

    #[test]
    fn wildcard_patterns_parse() {
        assert_eq!(
            OriginPattern::parse("https://*.Example.com").unwrap(),
            OriginPattern::Wildcard {
                scheme: Scheme::Https,
                suffix: "example.com".into(),
                port: 443
            }
        );
        assert_eq!(
            OriginPattern::parse("http://*.example.com:81")
                .unwrap()
                .to_string(),
            "http://*.example.com:81"
        );
    }
}
