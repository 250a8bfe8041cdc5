//! Docker image references: the `distribution/reference` grammar and
//! `ParseNormalizedNamed` / `ParseDockerRef` normalization, hand-written (no regex).
//!
//! ```text
//! reference      := name [ ":" tag ] [ "@" digest ]
//! name           := [domain-and-port "/"] path-component ["/" path-component]*
//! domain-and-port:= host [":" port-number]
//! host           := domain-name | IPv6address
//! domain-name    := domain-component ["." domain-component]*
//! domain-component := /([a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])/
//! port-number    := /[0-9]+/
//! path-component := alpha-numeric [separator alpha-numeric]*
//! alpha-numeric  := /[a-z0-9]+/
//! separator      := /[_.]|__|[-]+/
//! tag            := /[\w][\w.-]{0,127}/
//! digest         := algorithm ":" encoded
//! algorithm      := /[A-Za-z][A-Za-z0-9]*([-_+.][A-Za-z][A-Za-z0-9]*)*/
//! encoded        := /[0-9a-fA-F]{32,}/   (then go-digest: sha256/384/512, lower-case hex of the right length)
//! ```
//! Normalization: `docker.io` is the default domain, `index.docker.io` becomes
//! `docker.io`, single-component Docker Hub names get `library/`, and
//! `ParseDockerRef` drops the tag when a digest is present and adds `:latest`
//! when neither is.

#![deny(clippy::indexing_slicing)]

use std::fmt;

/// The default registry.
pub const DEFAULT_DOMAIN: &str = "docker.io";
const LEGACY_DEFAULT_DOMAIN: &str = "index.docker.io";
const OFFICIAL_REPO_PREFIX: &str = "library/";
/// Longest full name (domain + path), `NameTotalLengthMax`.
pub const NAME_TOTAL_LENGTH_MAX: usize = 255;

/// Why a string is not a valid reference (the Go error it corresponds to).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RefError {
    /// `ErrReferenceInvalidFormat`.
    #[error("invalid reference format")]
    InvalidFormat,
    /// `ErrNameEmpty`.
    #[error("repository name must have at least one component")]
    NameEmpty,
    /// `ErrNameContainsUppercase`.
    #[error("repository name must be lowercase")]
    NameContainsUppercase,
    /// `ErrNameTooLong`.
    #[error("repository name must not be more than 255 characters")]
    NameTooLong,
    /// A 64-hex identifier given as a name (`ParseNormalizedNamed`).
    #[error("invalid repository name, cannot specify 64-byte hexadecimal strings")]
    Identifier,
    /// `digest.ErrDigestUnsupported`.
    #[error("unsupported digest algorithm")]
    DigestUnsupported,
    /// `digest.ErrDigestInvalidLength` / format.
    #[error("invalid checksum digest")]
    DigestInvalid,
    /// Not UTF-8.
    #[error("not UTF-8")]
    NotUtf8,
}

/// A parsed, normalized reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reference {
    /// Registry domain (with port), e.g. `docker.io`.
    pub domain: String,
    /// Repository path, e.g. `library/nginx`.
    pub path: String,
    /// Tag, if any.
    pub tag: Option<String>,
    /// Digest, if any.
    pub digest: Option<String>,
}

impl Reference {
    /// `domain/path`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.domain, self.path)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

fn is_alnum_lower(c: u8) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

fn is_word(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// `alpha-numeric [separator alpha-numeric]*`.
fn path_component_ok(s: &[u8]) -> bool {
    let mut i = 0;
    let n = s.len();
    loop {
        let start = i;
        while i < n && s.get(i).is_some_and(|&c| is_alnum_lower(c)) {
            i += 1;
        }
        if i == start {
            return false;
        }
        if i == n {
            return true;
        }
        match s.get(i) {
            Some(b'.') => i += 1,
            Some(b'_') => {
                i += 1;
                if s.get(i) == Some(&b'_') {
                    i += 1;
                }
            }
            Some(b'-') => {
                while s.get(i) == Some(&b'-') {
                    i += 1;
                }
            }
            _ => return false,
        }
    }
}

fn domain_component_ok(s: &[u8]) -> bool {
    match (s.first(), s.last()) {
        (Some(a), Some(z)) => {
            a.is_ascii_alphanumeric()
                && z.is_ascii_alphanumeric()
                && s.iter().all(|&c| c.is_ascii_alphanumeric() || c == b'-')
        }
        _ => false,
    }
}

/// `host [":" port]`.
fn domain_ok(s: &[u8]) -> bool {
    let (host, port) = if s.first() == Some(&b'[') {
        let Some(close) = s.iter().position(|&c| c == b']') else {
            return false;
        };
        let inner = s.get(1..close).unwrap_or_default();
        if inner.is_empty() || !inner.iter().all(|&c| c.is_ascii_hexdigit() || c == b':') {
            return false;
        }
        let rest = s.get(close + 1..).unwrap_or_default();
        match rest.split_first() {
            None => return true,
            Some((b':', p)) => (None, Some(p)),
            _ => return false,
        }
    } else {
        match s.iter().position(|&c| c == b':') {
            Some(i) => (s.get(..i), s.get(i + 1..)),
            None => (Some(s), None),
        }
    };
    if let Some(h) = host {
        if !h.split(|&c| c == b'.').all(domain_component_ok) {
            return false;
        }
    }
    match port {
        Some(p) => !p.is_empty() && p.iter().all(u8::is_ascii_digit),
        None => true,
    }
}

fn name_ok(name: &[u8]) -> bool {
    let mut comps = name.split(|&c| c == b'/');
    if comps.clone().all(path_component_ok) {
        return true;
    }
    match (comps.next(), comps.clone().next()) {
        (Some(first), Some(_)) => domain_ok(first) && comps.all(path_component_ok),
        _ => false,
    }
}

fn tag_ok(t: &[u8]) -> bool {
    match t.split_first() {
        Some((&c, rest)) => {
            is_word(c)
                && rest.len() <= 127
                && rest.iter().all(|&c| is_word(c) || c == b'.' || c == b'-')
        }
        None => false,
    }
}

/// The `digest` production of the reference grammar (before go-digest's checks).
fn digest_grammar_ok(d: &[u8]) -> bool {
    let Some(colon) = d.iter().position(|&c| c == b':') else {
        return false;
    };
    let (alg, enc) = (
        d.get(..colon).unwrap_or_default(),
        d.get(colon + 1..).unwrap_or_default(),
    );
    let alg_ok = alg
        .split(|&c| matches!(c, b'-' | b'_' | b'+' | b'.'))
        .all(|p| {
            p.first().is_some_and(u8::is_ascii_alphabetic)
                && p.iter().all(u8::is_ascii_alphanumeric)
        });
    alg_ok && enc.len() >= 32 && enc.iter().all(u8::is_ascii_hexdigit)
}

/// go-digest `Digest.Validate` for the registered algorithms.
fn digest_validate(d: &str) -> Result<(), RefError> {
    let Some((alg, enc)) = d.split_once(':') else {
        return Err(RefError::DigestInvalid);
    };
    let want = match alg {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        _ => return Err(RefError::DigestUnsupported),
    };
    if enc.len() == want
        && enc
            .bytes()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
    {
        Ok(())
    } else {
        Err(RefError::DigestInvalid)
    }
}

/// Whether `d` is a valid digest of a registered algorithm (`sha256:<64 lower hex>`, …).
pub fn is_valid_digest(d: &[u8]) -> bool {
    std::str::from_utf8(d).is_ok_and(|s| digest_grammar_ok(d) && digest_validate(s).is_ok())
}

/// Whether `s` is exactly `sha256:<64 lower-case hex>`.
pub fn is_sha256_digest(s: &[u8]) -> bool {
    s.strip_prefix(b"sha256:").is_some_and(|h| {
        h.len() == 64
            && h.iter()
                .all(|&c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
    })
}

/// Where the parts of a reference are in the string it was parsed from.
#[derive(Debug, Clone, Copy)]
struct Spans {
    /// End of the name (domain and path).
    name_end: usize,
    /// Length of the domain that `parse`'s grammar recognizes (0 if none).
    domain_len: usize,
    /// The tag, without its `:`.
    tag: Option<(usize, usize)>,
    /// The digest, without its `@`.
    digest: Option<(usize, usize)>,
}

fn span(s: &str, r: Option<(usize, usize)>) -> Option<&str> {
    r.and_then(|(a, b)| s.get(a..b))
}

/// Go's `reference.Parse` without building the result: the grammar, the name
/// length and the digest checks, and where each part is.
fn parse_spans(s: &str) -> Result<Spans, RefError> {
    let b = s.as_bytes();
    let (rest_end, digest) = match b.iter().position(|&c| c == b'@') {
        Some(i) => (i, Some((i + 1, b.len()))),
        None => (b.len(), None),
    };
    let rest = b.get(..rest_end).unwrap_or_default();
    let last_slash = rest.iter().rposition(|&c| c == b'/').map_or(0, |i| i + 1);
    let (name_end, tag) = match rest
        .get(last_slash..)
        .and_then(|t| t.iter().position(|&c| c == b':'))
    {
        Some(i) => (last_slash + i, Some((last_slash + i + 1, rest_end))),
        None => (rest_end, None),
    };
    let part = |r: Option<(usize, usize)>| r.and_then(|(x, y)| b.get(x..y));
    let name = b.get(..name_end).unwrap_or_default();
    let grammar =
        name_ok(name) && part(tag).is_none_or(tag_ok) && part(digest).is_none_or(digest_grammar_ok);
    if !grammar {
        if s.is_empty() {
            return Err(RefError::NameEmpty);
        }
        let lower = s.to_ascii_lowercase();
        if lower != s && parse_spans(&lower).is_ok() {
            return Err(RefError::NameContainsUppercase);
        }
        return Err(RefError::InvalidFormat);
    }
    if name.len() > NAME_TOTAL_LENGTH_MAX {
        return Err(RefError::NameTooLong);
    }
    // ASCII by the grammar, so these are character boundaries.
    let name = s.get(..name_end).ok_or(RefError::NotUtf8)?;
    if let Some(d) = span(s, digest) {
        digest_validate(d)?;
    }
    // As Go's anchored name regexp: the optional domain group is greedy, so a
    // first component that is a valid domain-and-port is the domain.
    let domain_len = match name.split_once('/') {
        Some((d, p))
            if domain_ok(d.as_bytes()) && p.split('/').all(|c| path_component_ok(c.as_bytes())) =>
        {
            d.len()
        }
        _ => 0,
    };
    Ok(Spans {
        name_end,
        domain_len,
        tag,
        digest,
    })
}

/// Go's `reference.Parse`: the grammar, the name length and the digest checks.
/// No normalization.
pub fn parse(s: &str) -> Result<Reference, RefError> {
    let sp = parse_spans(s)?;
    let name = s.get(..sp.name_end).unwrap_or_default();
    let (domain, path) = match sp.domain_len {
        0 => ("", name),
        n => (
            name.get(..n).unwrap_or_default(),
            name.get(n + 1..).unwrap_or_default(),
        ),
    };
    Ok(Reference {
        domain: domain.to_string(),
        path: path.to_string(),
        tag: span(s, sp.tag).map(str::to_string),
        digest: span(s, sp.digest).map(str::to_string),
    })
}

/// A name normalized as `ParseNormalizedNamed` does, kept as the one string
/// `domain/path[:tag][@digest]` it displays as, with the parts' positions.
#[derive(Debug, Clone)]
pub struct Normalized {
    full: String,
    domain_len: usize,
    spans: Spans,
}

impl Normalized {
    /// The tag, if any.
    pub fn tag(&self) -> Option<&str> {
        span(&self.full, self.spans.tag)
    }

    /// The digest, if any.
    pub fn digest(&self) -> Option<&str> {
        span(&self.full, self.spans.digest)
    }

    /// `ParseDockerRef`'s string: the tag dropped when a digest is present,
    /// `:latest` added when neither is.
    pub fn into_docker_ref(mut self) -> String {
        match (self.spans.tag, self.spans.digest) {
            (Some((tag_start, tag_end)), Some(_)) => {
                // `name:tag@digest` → `name@digest` (ASCII by the grammar).
                let (name, at_digest) = (
                    self.full
                        .get(..tag_start.saturating_sub(1))
                        .unwrap_or_default(),
                    self.full.get(tag_end..).unwrap_or_default(),
                );
                [name, at_digest].concat()
            }
            (None, None) => {
                self.full.push_str(":latest");
                self.full
            }
            _ => self.full,
        }
    }

    /// The owned parts.
    pub fn reference(&self) -> Reference {
        let name = self.full.get(..self.spans.name_end).unwrap_or_default();
        Reference {
            domain: name.get(..self.domain_len).unwrap_or_default().to_string(),
            path: name
                .get(self.domain_len + 1..)
                .unwrap_or_default()
                .to_string(),
            tag: self.tag().map(str::to_string),
            digest: self.digest().map(str::to_string),
        }
    }
}

/// Go's `reference.ParseNormalizedNamed`, as one string and its spans.
pub fn normalize(s: &str) -> Result<Normalized, RefError> {
    if s.len() == 64
        && s.bytes()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
    {
        return Err(RefError::Identifier);
    }
    let (domain, library, remainder) = split_docker_domain(s);
    let remote = remainder.split_once(':').map_or(remainder, |(r, _)| r);
    if remote.bytes().any(|c| c.is_ascii_uppercase()) {
        return Err(RefError::NameContainsUppercase);
    }
    let prefix = if library { OFFICIAL_REPO_PREFIX } else { "" };
    let mut full = String::with_capacity(domain.len() + 1 + prefix.len() + remainder.len() + 8);
    full.push_str(domain);
    full.push('/');
    full.push_str(prefix);
    full.push_str(remainder);
    let spans = parse_spans(&full)?;
    // The normalized domain wins over `parse`'s own split.
    Ok(Normalized {
        domain_len: domain.len(),
        full,
        spans,
    })
}

/// Go's `reference.ParseNormalizedNamed`.
pub fn parse_normalized_named(s: &str) -> Result<Reference, RefError> {
    normalize(s).map(|n| n.reference())
}

/// `(domain, whether "library/" goes before the remainder, remainder)`.
fn split_docker_domain(name: &str) -> (&str, bool, &str) {
    let (mut domain, remainder) = match name.split_once('/') {
        Some((d, r))
            if d.contains(['.', ':'])
                || d == "localhost"
                || d.bytes().any(|c| c.is_ascii_uppercase()) =>
        {
            (d, r)
        }
        _ => (DEFAULT_DOMAIN, name),
    };
    if domain == LEGACY_DEFAULT_DOMAIN {
        domain = DEFAULT_DOMAIN;
    }
    let library = domain == DEFAULT_DOMAIN && !remainder.contains('/');
    (domain, library, remainder)
}

/// Go's `reference.ParseDockerRef`: normalized, tag dropped when a digest is
/// present, `latest` added when neither is (`nginx` → `docker.io/library/nginx:latest`).
pub fn parse_docker_ref(s: &str) -> Result<Reference, RefError> {
    let mut r = parse_normalized_named(s)?;
    if r.digest.is_some() {
        r.tag = None;
    } else if r.tag.is_none() {
        r.tag = Some("latest".into());
    }
    Ok(r)
}

#[cfg(test)]
// A test that indexes out of bounds fails, which is what it should do.
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;

    const H64: &str = "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff";

    fn p(s: &str) -> Result<(String, String, Option<String>, Option<String>), RefError> {
        parse(s).map(|r| (r.domain, r.path, r.tag, r.digest))
    }

    fn some(s: &str) -> Option<String> {
        Some(s.to_string())
    }

    /// Cases from distribution/reference `reference_test.go` `TestReferenceParse`.
    #[test]
    fn parse_matches_the_grammar_examples() {
        assert_eq!(
            p("test_com"),
            Ok(("".into(), "test_com".into(), None, None))
        );
        assert_eq!(
            p("test.com:tag"),
            Ok(("".into(), "test.com".into(), some("tag"), None))
        );
        assert_eq!(
            p("test.com:5000"),
            Ok(("".into(), "test.com".into(), some("5000"), None))
        );
        assert_eq!(
            p("test.com/repo:tag"),
            Ok(("test.com".into(), "repo".into(), some("tag"), None))
        );
        assert_eq!(
            p("test:5000/repo"),
            Ok(("test:5000".into(), "repo".into(), None, None))
        );
        assert_eq!(
            p("test:5000/repo:tag"),
            Ok(("test:5000".into(), "repo".into(), some("tag"), None))
        );
        let d = format!("sha256:{H64}");
        assert_eq!(
            p(&format!("test:5000/repo@{d}")),
            Ok(("test:5000".into(), "repo".into(), None, Some(d.clone())))
        );
        assert_eq!(
            p(&format!("test:5000/repo:tag@{d}")),
            Ok((
                "test:5000".into(),
                "repo".into(),
                some("tag"),
                Some(d.clone())
            ))
        );
        assert_eq!(
            p("test:5000/repo"),
            Ok(("test:5000".into(), "repo".into(), None, None))
        );
        assert_eq!(p(""), Err(RefError::NameEmpty));
        assert_eq!(p(":justtag"), Err(RefError::InvalidFormat));
        assert_eq!(p(&format!("@{d}")), Err(RefError::InvalidFormat));
        assert_eq!(
            p("repo@sha256:ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"),
            Err(RefError::DigestInvalid)
        );
        assert_eq!(p("validname@invaliddigest:ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"), Err(RefError::DigestUnsupported));
        assert_eq!(p("Uppercase:tag"), Err(RefError::NameContainsUppercase));
        assert_eq!(
            p("test:5000/Uppercase/lowercase:tag"),
            Err(RefError::NameContainsUppercase)
        );
        assert_eq!(
            p("lowercase:Uppercase"),
            Ok(("".into(), "lowercase".into(), some("Uppercase"), None))
        );
        assert_eq!(p("a/".repeat(128).trim_end_matches('/')).err(), None);
        assert_eq!(
            p(&format!("{}a", "a/".repeat(128))),
            Err(RefError::NameTooLong)
        );
        assert_eq!(p("aa/asdf$$^/aa"), Err(RefError::InvalidFormat));
        assert_eq!(
            p("sub-dom1.foo.com/bar/baz/quux"),
            Ok(("sub-dom1.foo.com".into(), "bar/baz/quux".into(), None, None))
        );
        assert_eq!(
            p("sub-dom1.foo.com/bar/baz/quux:some-long-tag"),
            Ok((
                "sub-dom1.foo.com".into(),
                "bar/baz/quux".into(),
                some("some-long-tag"),
                None
            ))
        );
        assert_eq!(
            p("b.gcr.io/test.example.com/my-app:test.example.com"),
            Ok((
                "b.gcr.io".into(),
                "test.example.com/my-app".into(),
                some("test.example.com"),
                None
            ))
        );
        assert_eq!(
            p("xn--n3h.com/myimage:xn--n3h.com"),
            Ok((
                "xn--n3h.com".into(),
                "myimage".into(),
                some("xn--n3h.com"),
                None
            ))
        );
        assert_eq!(
            p("foo_bar.com:8080"),
            Ok(("".into(), "foo_bar.com".into(), some("8080"), None))
        );
        assert_eq!(
            p("foo/foo_bar.com:8080"),
            Ok(("foo".into(), "foo_bar.com".into(), some("8080"), None))
        );
        assert_eq!(
            p("192.168.1.1"),
            Ok(("".into(), "192.168.1.1".into(), None, None))
        );
        assert_eq!(
            p("192.168.1.1:tag"),
            Ok(("".into(), "192.168.1.1".into(), some("tag"), None))
        );
        assert_eq!(
            p("192.168.1.1:5000"),
            Ok(("".into(), "192.168.1.1".into(), some("5000"), None))
        );
        assert_eq!(
            p("192.168.1.1/repo"),
            Ok(("192.168.1.1".into(), "repo".into(), None, None))
        );
        assert_eq!(
            p("192.168.1.1:5000/repo"),
            Ok(("192.168.1.1:5000".into(), "repo".into(), None, None))
        );
        assert_eq!(
            p("[2001:db8::1]/repo"),
            Ok(("[2001:db8::1]".into(), "repo".into(), None, None))
        );
        assert_eq!(
            p("[2001:db8::1]:5000/repo:tag"),
            Ok((
                "[2001:db8::1]:5000".into(),
                "repo".into(),
                some("tag"),
                None
            ))
        );
        assert_eq!(p("[2001:db8::1]"), Err(RefError::InvalidFormat));
        assert_eq!(p("[2001:db8::1]:5000"), Err(RefError::InvalidFormat));
        assert_eq!(
            p("localhost/repo"),
            Ok(("localhost".into(), "repo".into(), None, None))
        );
        assert_eq!(
            p("a__b/c--d/e.f"),
            Ok(("".into(), "a__b/c--d/e.f".into(), None, None))
        );
        assert_eq!(p("a___b"), Err(RefError::InvalidFormat));
        assert_eq!(p("a._b"), Err(RefError::InvalidFormat));
        assert_eq!(p("repo:-tag"), Err(RefError::InvalidFormat));
        assert_eq!(
            p(&format!("repo:{}", "t".repeat(129))),
            Err(RefError::InvalidFormat)
        );
        assert!(p(&format!("repo:{}", "t".repeat(128))).is_ok());
    }

    /// `Normalized`'s string surgery (what `refs` prints) agrees with the
    /// owned `Reference` and its `Display` on a generated corpus of names, valid
    /// and not.
    #[test]
    fn normalized_string_is_the_displayed_reference() {
        let parts = [
            "a",
            "z9",
            ".",
            "-",
            "_",
            "__",
            ":",
            "/",
            "@",
            "Q",
            "docker.io",
            "index.docker.io",
            "localhost",
            "library",
            "5000",
            "[::1]",
            "é",
            "sha512:",
            "latest",
            "x.y",
            "nginx",
            "registry.k8s.io/pause",
            "--",
        ];
        let digest = format!("sha256:{H64}");
        let (at, tagged) = (format!("@{digest}"), format!(":v1.0@{digest}"));
        let mut parts: Vec<&str> = parts.to_vec();
        parts.extend([digest.as_str(), at.as_str(), tagged.as_str()]);
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let (mut valid, mut with_both) = (0, 0);
        for _ in 0..200_000 {
            let mut s = String::new();
            for _ in 0..state % 7 {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                s.push_str(parts[(state % parts.len() as u64) as usize]);
            }
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1);
            let want = parse_docker_ref(&s).map(|r| r.to_string());
            let n = normalize(&s);
            if let (Ok(n), Ok(r)) = (&n, parse_normalized_named(&s)) {
                assert_eq!(
                    (n.tag(), n.digest()),
                    (r.tag.as_deref(), r.digest.as_deref()),
                    "{s:?}"
                );
                valid += 1;
                with_both += usize::from(r.tag.is_some() && r.digest.is_some());
            }
            assert_eq!(n.map(Normalized::into_docker_ref), want, "{s:?}");
        }
        assert!(
            valid > 10_000 && with_both > 100,
            "corpus too thin: {valid} valid, {with_both} tag+digest"
        );
    }

    /// Cases from `normalize_test.go` (`TestParseNormalizedNamed`, `TestParseDockerRef`).
    #[test]
    fn normalization_matches_parse_docker_ref() {
        let n = |s: &str| parse_docker_ref(s).map(|r| r.to_string());
        assert_eq!(n("nginx").as_deref(), Ok("docker.io/library/nginx:latest"));
        assert_eq!(
            n("nginx:1.25").as_deref(),
            Ok("docker.io/library/nginx:1.25")
        );
        assert_eq!(
            n("docker.io/library/nginx").as_deref(),
            Ok("docker.io/library/nginx:latest")
        );
        assert_eq!(
            n("index.docker.io/nginx").as_deref(),
            Ok("docker.io/library/nginx:latest")
        );
        assert_eq!(
            n("index.docker.io/foo/bar").as_deref(),
            Ok("docker.io/foo/bar:latest")
        );
        assert_eq!(n("foo/bar").as_deref(), Ok("docker.io/foo/bar:latest"));
        assert_eq!(n("localhost/foo").as_deref(), Ok("localhost/foo:latest"));
        assert_eq!(
            n("localhost:5000/foo:tag").as_deref(),
            Ok("localhost:5000/foo:tag")
        );
        assert_eq!(
            n("127.0.0.1:5000/library/app:1.0").as_deref(),
            Ok("127.0.0.1:5000/library/app:1.0")
        );
        assert_eq!(n("gcr.io/foo/bar:baz").as_deref(), Ok("gcr.io/foo/bar:baz"));
        let d = format!("sha256:{H64}");
        assert_eq!(
            n(&format!("nginx@{d}")),
            Ok(format!("docker.io/library/nginx@{d}"))
        );
        assert_eq!(
            n(&format!("nginx:1@{d}")),
            Ok(format!("docker.io/library/nginx@{d}"))
        );
        assert_eq!(n("Docker/docker").as_deref(), Ok("Docker/docker:latest")); // upper-case first part = domain
        assert_eq!(n("docker/Docker"), Err(RefError::NameContainsUppercase));
        assert_eq!(
            n("docker.io/Docker/docker"),
            Err(RefError::NameContainsUppercase)
        );
        assert_eq!(
            n("Example.com/foo").as_deref(),
            Ok("Example.com/foo:latest")
        );
        assert_eq!(n(H64), Err(RefError::Identifier));
        // The CRI image-id alias parses as a tag of `library/sha256`, as in Go.
        assert_eq!(n(&d), Ok(format!("docker.io/library/sha256:{H64}")));
        assert_eq!(n("foo:5000/bar").as_deref(), Ok("foo:5000/bar:latest"));
        let r = parse_normalized_named("busybox").unwrap();
        assert_eq!(
            (r.domain.as_str(), r.path.as_str(), r.tag),
            ("docker.io", "library/busybox", None)
        );
    }

    #[test]
    fn digests() {
        assert!(is_valid_digest(format!("sha256:{H64}").as_bytes()));
        assert!(!is_valid_digest(
            format!("sha256:{}", H64.to_uppercase()).as_bytes()
        ));
        assert!(!is_valid_digest(b"sha256:abc"));
        assert!(!is_valid_digest(b"md5:ffffffffffffffffffffffffffffffff"));
        assert!(!is_valid_digest(b"\xff"));
        assert!(is_sha256_digest(format!("sha256:{H64}").as_bytes()));
        assert!(!is_sha256_digest(b"sha256:"));
    }
}
