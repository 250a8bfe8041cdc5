//! Where containerd keeps its root — and so `meta.db` — on the installations
//! ctrdb knows, and which of them a machine has. containerd's own default comes
//! first; the others are distributions that embed containerd with a root of
//! their own, searched only when the default has no database.

use std::path::PathBuf;

/// The database's place under a containerd root.
pub const DB_UNDER_ROOT: &str = "io.containerd.metadata.v1.bolt/meta.db";

/// containerd's default root (`root` in its config.toml).
pub const DEFAULT_ROOT: &str = "/var/lib/containerd";

/// One installation: what it is and its containerd root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installation {
    /// For people: `k3s`, `rke2`, ...
    pub name: &'static str,
    /// The containerd root directory.
    pub root: PathBuf,
}

impl Installation {
    /// An installation at `root`.
    pub fn new(name: &'static str, root: impl Into<PathBuf>) -> Installation {
        Installation {
            name,
            root: root.into(),
        }
    }

    /// Its metadata database.
    pub fn db(&self) -> PathBuf {
        self.root.join(DB_UNDER_ROOT)
    }

    /// Whether its database exists (a file, or a link to one).
    fn has_db(&self) -> bool {
        self.db().is_file()
    }
}

/// containerd's own installation.
pub fn containerd_default() -> Installation {
    Installation::new("containerd", DEFAULT_ROOT)
}

/// The distributions that run containerd with a root of their own.
pub fn embedded() -> Vec<Installation> {
    vec![
        Installation::new("k3s", "/var/lib/rancher/k3s/agent/containerd"),
        Installation::new("rke2", "/var/lib/rancher/rke2/agent/containerd"),
        Installation::new(
            "Docker's managed containerd",
            "/var/lib/docker/containerd/daemon",
        ),
        Installation::new("microk8s", "/var/snap/microk8s/common/var/lib/containerd"),
    ]
}

/// The database to read when none is named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Discovery {
    /// The default installation has a database.
    Default(Installation),
    /// The default has none and exactly this one of the others has.
    Found(Installation),
    /// No candidate has a database; every one tried, the default first.
    NotFound(Vec<Installation>),
    /// The default has none and several others have one: which is meant is
    /// the user's choice.
    Several(Vec<Installation>),
}

/// Finds the database: `default`'s if it exists, else the one of `others`
/// that has one.
pub fn discover(default: &Installation, others: &[Installation]) -> Discovery {
    if default.has_db() {
        return Discovery::Default(default.clone());
    }
    let found: Vec<Installation> = others.iter().filter(|i| i.has_db()).cloned().collect();
    match found.as_slice() {
        [] => Discovery::NotFound(std::iter::once(default).chain(others).cloned().collect()),
        [one] => Discovery::Found(one.clone()),
        _ => Discovery::Several(found),
    }
}

/// `path (name)` for each installation's database, joined for a message.
pub fn describe(installations: &[Installation]) -> String {
    installations
        .iter()
        .map(|i| format!("{} ({})", i.db().display(), i.name))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn make(root: &Path, rel: &str) -> PathBuf {
        let r = root.join(rel);
        let db = r.join(DB_UNDER_ROOT);
        std::fs::create_dir_all(db.parent().unwrap()).unwrap();
        std::fs::write(&db, b"").unwrap();
        r
    }

    #[test]
    fn the_default_wins_then_the_only_other_then_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let default = Installation::new("containerd", d.join("containerd"));
        let others = vec![
            Installation::new("k3s", d.join("k3s")),
            Installation::new("rke2", d.join("rke2")),
        ];
        // nothing anywhere: every candidate is named, the default first
        match discover(&default, &others) {
            Discovery::NotFound(tried) => {
                assert_eq!(
                    tried.iter().map(|i| i.name).collect::<Vec<_>>(),
                    ["containerd", "k3s", "rke2"]
                );
            }
            other => panic!("{other:?}"),
        }
        // a root directory without a database does not count
        std::fs::create_dir_all(d.join("k3s")).unwrap();
        assert!(matches!(
            discover(&default, &others),
            Discovery::NotFound(_)
        ));
        make(d, "rke2");
        assert_eq!(
            discover(&default, &others),
            Discovery::Found(others[1].clone())
        );
        make(d, "k3s");
        assert_eq!(
            discover(&default, &others),
            Discovery::Several(others.clone())
        );
        make(d, "containerd");
        assert_eq!(
            discover(&default, &others),
            Discovery::Default(default.clone())
        );
        assert!(describe(&others).contains("(k3s), "));
    }

    #[test]
    fn known_installations() {
        assert_eq!(
            containerd_default().db(),
            Path::new("/var/lib/containerd/io.containerd.metadata.v1.bolt/meta.db")
        );
        let names: Vec<&str> = embedded().iter().map(|i| i.name).collect();
        assert_eq!(
            names,
            ["k3s", "rke2", "Docker's managed containerd", "microk8s"]
        );
    }
}
