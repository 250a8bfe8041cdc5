//! `--keep GLOB`: shell-style wildcards over image names, `*` (any run of bytes,
//! `/` and `:` included) and `?` (exactly one byte); every other byte matches
//! itself. Hand-written (a dozen lines) rather than `globset`/`glob`: those bring
//! character classes, path-separator semantics and a regex engine that an image
//! name (not a path) does not need.

/// A compiled `--keep` pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob(Vec<u8>);

impl Glob {
    /// The pattern as given.
    pub fn new(pattern: &str) -> Glob {
        Glob(pattern.as_bytes().to_vec())
    }

    /// The pattern text.
    pub fn pattern(&self) -> String {
        String::from_utf8_lossy(&self.0).into_owned()
    }

    /// Whether the whole of `name` matches. Iterative with one backtrack point
    /// (the last `*`), so linear-ish and never recursive.
    pub fn matches(&self, name: &[u8]) -> bool {
        let p = &self.0;
        let (mut pi, mut ni) = (0usize, 0usize);
        let mut star: Option<(usize, usize)> = None;
        while ni < name.len() {
            match p.get(pi) {
                Some(b'*') => {
                    star = Some((pi, ni));
                    pi += 1;
                }
                Some(&c) if c == b'?' || Some(&c) == name.get(ni) => {
                    pi += 1;
                    ni += 1;
                }
                _ => match star {
                    Some((sp, sn)) => {
                        pi = sp + 1;
                        ni = sn + 1;
                        star = Some((sp, sn + 1));
                    }
                    None => return false,
                },
            }
        }
        p.get(pi..)
            .is_some_and(|rest| rest.iter().all(|&c| c == b'*'))
    }
}
