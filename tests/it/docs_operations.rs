//! `docs/operations.md`, the maintenance-window procedure, stays true to the
//! binary: the README links it, every `ctrdb` command in it parses with the
//! current command line, it names every installation root ctrdb knows, each
//! distribution's services are stopped and started, and its rollback command
//! has the form ctrdb prints.

use clap::Parser;

use super::common::repo;

fn doc() -> String {
    std::fs::read_to_string(repo().join("docs/operations.md")).expect("docs/operations.md")
}

/// The `ctrdb …` commands of the indented code blocks, as argument vectors
/// (the shell's `;`, `&&`, `|` and `>` end a command; quotes are dropped and
/// `$ROOT`/`$DB` expanded).
fn ctrdb_commands(text: &str) -> Vec<Vec<String>> {
    let root = "/var/lib/containerd";
    let db = format!("{root}/io.containerd.metadata.v1.bolt/meta.db");
    text.lines()
        .filter_map(|l| l.strip_prefix("    "))
        .map(str::trim_start)
        .filter(|l| l.starts_with("ctrdb "))
        .map(|l| {
            let end = [";", "&&", "|", ">", "#"]
                .iter()
                .filter_map(|s| l.find(s))
                .min()
                .unwrap_or(l.len());
            l[..end]
                .split_whitespace()
                .map(|w| {
                    w.replace('"', "")
                        .replace("$ROOT", root)
                        .replace("$DB", &db)
                })
                .collect()
        })
        .collect()
}

#[test]
fn operations_doc_commands_parse_and_name_every_installation() {
    let text = doc();
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    assert!(
        readme.contains("`docs/operations.md`"),
        "README links the procedure"
    );

    let cmds = ctrdb_commands(&text);
    assert!(cmds.len() >= 9, "found only {cmds:?}");
    for c in &cmds {
        if let Err(e) = ctrdb::cli::Cli::try_parse_from(c) {
            panic!("docs/operations.md: `{}` does not parse:\n{e}", c.join(" "));
        }
    }
    for want in [
        vec!["ctrdb", "check", "--root"],
        vec!["ctrdb", "dedup", "--root"],
        vec![
            "ctrdb",
            "dedup",
            "--root",
            "/var/lib/containerd",
            "--in-place",
        ],
    ] {
        assert!(
            cmds.iter()
                .any(|c| c.starts_with(&want.iter().map(|s| s.to_string()).collect::<Vec<_>>())),
            "{want:?}"
        );
    }

    let roots = std::iter::once(ctrdb::containerd::roots::containerd_default())
        .chain(ctrdb::containerd::roots::embedded());
    for i in roots {
        assert!(
            text.contains(&format!("`{}`", i.root.display())),
            "{} ({}) missing",
            i.root.display(),
            i.name
        );
    }
    for step in [
        "kubectl cordon NODE",
        "kubectl drain NODE",
        "kubectl uncordon NODE",
        "systemctl stop kubelet",
        "systemctl stop containerd",
        "systemctl stop k3s",
        "systemctl stop rke2-server",
        "microk8s stop",
        "systemctl stop docker.socket docker",
        "systemctl start containerd && systemctl start kubelet",
        "systemctl start k3s",
        "systemctl start rke2-server",
        "microk8s start",
        "k3s-killall.sh",
        "rke2-killall.sh",
        "crictl images",
    ] {
        assert!(text.contains(step), "{step:?} missing");
    }
    // the rollback line has the shape of ctrdb's own (fsio::atomic::Backup::restore_command)
    assert!(text.contains(
        "    mv -f -- /var/lib/containerd/io.containerd.metadata.v1.bolt/meta.db.ctrdb-backup-"
    ));
}
