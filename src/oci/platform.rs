//! Platforms as containerd's `platforms` package formats, normalizes and
//! matches them (`Format`, `Normalize`, `Only(DefaultSpec())`).

/// An OCI platform (the fields containerd compares on Linux).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Platform {
    /// `os`.
    pub os: String,
    /// `architecture`.
    pub architecture: String,
    /// `variant`.
    pub variant: String,
}

impl Platform {
    /// A platform from its parts.
    pub fn new(os: &str, architecture: &str, variant: &str) -> Platform {
        Platform {
            os: os.into(),
            architecture: architecture.into(),
            variant: variant.into(),
        }
    }

    /// Parses `os/arch[/variant]`.
    pub fn parse(s: &str) -> Option<Platform> {
        let mut parts = s.split('/');
        let (os, arch) = (parts.next()?, parts.next()?);
        let variant = parts.next().unwrap_or("");
        if parts.next().is_some() || os.is_empty() || arch.is_empty() {
            return None;
        }
        Some(Platform::new(os, arch, variant))
    }

    /// The platform `ctr` runs as on this machine (`platforms.DefaultSpec`):
    /// Linux, Go's name for the architecture, and for ARM the CPU's variant.
    pub fn host() -> Platform {
        let arch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "x86" => "386",
            "aarch64" => "arm64",
            "powerpc64" if cfg!(target_endian = "little") => "ppc64le",
            "powerpc64" => "ppc64",
            "loongarch64" => "loong64",
            other => other,
        };
        let variant = match arch {
            "arm64" => "v8".to_string(),
            "arm" => arm_variant().unwrap_or_default(),
            _ => String::new(),
        };
        Platform::new(std::env::consts::OS, arch, &variant)
    }

    /// `platforms.Format`: `unknown` without an OS, else the non-empty parts
    /// joined and cleaned as Go's `path.Join` does.
    pub fn format(&self) -> String {
        if self.os.is_empty() {
            return "unknown".into();
        }
        let joined = [&self.os, &self.architecture, &self.variant]
            .iter()
            .filter(|s| !s.is_empty())
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join("/");
        clean(&joined)
    }

    /// `platforms.Normalize` (containerd 1.6–2.x on Linux).
    pub fn normalize(&self) -> Platform {
        let os = match self.os.to_lowercase().as_str() {
            "" => std::env::consts::OS.to_string(),
            "macos" => "darwin".to_string(),
            os => os.to_string(),
        };
        let arch = self.architecture.to_lowercase();
        let variant = self.variant.to_lowercase();
        let (arch, variant) = match arch.as_str() {
            "i386" => ("386".to_string(), String::new()),
            "x86_64" | "x86-64" | "amd64" => {
                let v = if variant == "v1" {
                    String::new()
                } else {
                    variant
                };
                ("amd64".to_string(), v)
            }
            "aarch64" | "arm64" => {
                let v = match variant.as_str() {
                    "8" | "v8" | "v8.0" => String::new(),
                    "9" | "9.0" | "v9.0" => "v9".to_string(),
                    _ => variant,
                };
                ("arm64".to_string(), v)
            }
            "armhf" => ("arm".to_string(), "v7".to_string()),
            "armel" => ("arm".to_string(), "v6".to_string()),
            "arm" => {
                let v = match variant.as_str() {
                    "" | "7" => "v7".to_string(),
                    "5" | "6" | "8" => format!("v{variant}"),
                    _ => variant,
                };
                ("arm".to_string(), v)
            }
            _ => (arch, variant),
        };
        Platform {
            os,
            architecture: arch,
            variant,
        }
    }
}

/// Go's `path.Clean` for a relative or rooted slash path.
fn clean(p: &str) -> String {
    let rooted = p.starts_with('/');
    let mut out: Vec<&str> = Vec::new();
    for seg in p.split('/') {
        match seg {
            "" | "." => {}
            ".." => match out.last() {
                Some(&last) if last != ".." => {
                    out.pop();
                }
                _ if rooted => {}
                _ => out.push(".."),
            },
            s => out.push(s),
        }
    }
    let body = out.join("/");
    match (rooted, body.is_empty()) {
        (true, _) => format!("/{body}"),
        (false, true) => ".".into(),
        (false, false) => body,
    }
}

/// The variant of a 32-bit ARM CPU from `/proc/cpuinfo` (`CPU architecture: 7`).
fn arm_variant() -> Option<String> {
    let info = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    let v = info
        .lines()
        .find_map(|l| l.strip_prefix("CPU architecture"))?
        .trim_start_matches([' ', '\t', ':'])
        .trim();
    Some(format!(
        "v{}",
        v.chars()
            .take_while(char::is_ascii_digit)
            .collect::<String>()
    ))
}

/// `platforms.Only(p)`: `p` and what it can also run (amd64: lower variants
/// and 386; arm: lower variants down to v5; arm64: arm of the same and lower
/// variants), in that order of preference.
#[derive(Debug, Clone)]
pub struct Matcher {
    vector: Vec<Platform>,
}

impl Matcher {
    /// The matcher `platforms.Only(p)` builds.
    pub fn only(p: &Platform) -> Matcher {
        Matcher {
            vector: vector(&p.normalize())
                .into_iter()
                .map(|p| p.normalize())
                .collect(),
        }
    }

    /// Whether `p` matches any platform of the vector.
    pub fn matches(&self, p: &Platform) -> bool {
        self.rank(p) != usize::MAX
    }

    /// The index of the first platform of the vector `p` matches
    /// (`usize::MAX`: none): the order `Less` sorts by.
    pub fn rank(&self, p: &Platform) -> usize {
        let n = p.normalize();
        self.vector
            .iter()
            .position(|m| *m == n)
            .unwrap_or(usize::MAX)
    }
}

fn variant_number(v: &str) -> Option<u32> {
    v.strip_prefix('v').unwrap_or(v).parse().ok()
}

/// `platformVector`.
fn vector(p: &Platform) -> Vec<Platform> {
    let mut v = vec![p.clone()];
    let with = |arch: &str, variant: String| Platform {
        os: p.os.clone(),
        architecture: arch.into(),
        variant,
    };
    match p.architecture.as_str() {
        "amd64" => {
            if let Some(n) = variant_number(&p.variant).filter(|&n| n > 1) {
                v.extend((1..n).rev().map(|i| with("amd64", format!("v{i}"))));
            }
            v.push(with("386", String::new()));
        }
        "arm" => {
            if let Some(n) = variant_number(&p.variant).filter(|&n| n > 5) {
                v.extend((5..n).rev().map(|i| with("arm", format!("v{i}"))));
            }
        }
        "arm64" => {
            let variant = if p.variant.is_empty() {
                "v8".to_string()
            } else {
                p.variant.clone()
            };
            v.extend(vector(&with("arm", variant)));
        }
        _ => {}
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_normalize_and_match_as_containerd() {
        assert_eq!(
            Platform::new("linux", "arm64", "v8").format(),
            "linux/arm64/v8"
        );
        assert_eq!(Platform::new("linux", "amd64", "").format(), "linux/amd64");
        assert_eq!(Platform::new("", "amd64", "").format(), "unknown");
        assert_eq!(Platform::new("linux", "../x", "").format(), "x");
        assert_eq!(
            Platform::new("Linux", "aarch64", "8").normalize(),
            Platform::new("linux", "arm64", "")
        );
        assert_eq!(
            Platform::new("linux", "arm", "").normalize(),
            Platform::new("linux", "arm", "v7")
        );
        let amd64 = Matcher::only(&Platform::new("linux", "amd64", ""));
        assert!(amd64.matches(&Platform::new("linux", "amd64", "")));
        assert_eq!(amd64.rank(&Platform::new("linux", "386", "")), 1);
        assert!(!amd64.matches(&Platform::new("linux", "arm64", "v8")));
        let arm64 = Matcher::only(&Platform::new("linux", "arm64", "v8"));
        assert_eq!(arm64.rank(&Platform::new("linux", "arm64", "v8")), 0);
        assert_eq!(arm64.rank(&Platform::new("linux", "arm", "v7")), 2);
        assert!(!arm64.matches(&Platform::new("linux", "amd64", "")));
        assert_eq!(
            Platform::parse("linux/arm/v7"),
            Some(Platform::new("linux", "arm", "v7"))
        );
        assert_eq!(Platform::parse("linux"), None);
    }
}
