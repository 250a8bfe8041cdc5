//! `ctrdb completions` and `ctrdb man` produce what the shells and the man
//! tools accept: each completion script loads into its shell and completes a
//! command name, and the manual page renders through `man -l` and `groff -man`
//! without a warning, with a section for every command. The shells and
//! renderers are oracles (`.ci/install-deps.sh` installs them).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use super::common::*;

/// `tool` on `PATH`, or `None` after [`skip_or_fail`].
fn tool(test: &str, name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file());
    if found.is_none() {
        skip_or_fail(
            test,
            &format!("{name} not found on PATH (run .ci/install-deps.sh)"),
        );
    }
    found
}

fn run(cmd: &mut Command, stdin: &[u8]) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().expect("wait")
}

fn script(shell: &str, dir: &Path) -> PathBuf {
    let o = ctrdb(&["completions", shell]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(o.stderr.is_empty());
    let p = dir.join(format!("ctrdb.{shell}"));
    std::fs::write(&p, &o.stdout).unwrap();
    p
}

fn lines(o: &Output) -> Vec<String> {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn bash_completion_parses_and_completes_commands_and_options() {
    let Some(bash) = tool(&test_name(), "bash") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let s = script("bash", dir.path());
    let o = Command::new(&bash).arg("-n").arg(&s).output().unwrap();
    assert!(
        o.status.success() && o.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // Load it and call the function bash would call for `ctrdb ch<TAB>` and
    // `ctrdb dedup --pol<TAB>`.
    let probe = format!(
        "source {s}\n\
         COMP_WORDS=(ctrdb ch); COMP_CWORD=1; _ctrdb ctrdb ch ctrdb; printf '%s\\n' \"${{COMPREPLY[@]}}\"\n\
         COMP_WORDS=(ctrdb dedup --pol); COMP_CWORD=2; _ctrdb ctrdb --pol dedup; printf '%s\\n' \"${{COMPREPLY[@]}}\"\n\
         complete -p ctrdb\n",
        s = s.display()
    );
    let got = lines(&run(
        Command::new(&bash).arg("--norc").arg("-s"),
        probe.as_bytes(),
    ));
    assert!(got.contains(&"check".to_string()), "{got:?}");
    assert!(got.contains(&"--policy".to_string()), "{got:?}");
    assert!(
        got.iter()
            .any(|l| l.starts_with("complete ") && l.ends_with(" -F _ctrdb ctrdb")),
        "{got:?}"
    );
}

#[test]
fn zsh_completion_parses_and_defines_the_function() {
    let Some(zsh) = tool(&test_name(), "zsh") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let s = script("zsh", dir.path());
    let o = Command::new(&zsh).arg("-n").arg(&s).output().unwrap();
    assert!(
        o.status.success() && o.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // As installed: a file `_ctrdb` on $fpath, found by compinit.
    std::fs::rename(&s, dir.path().join("_ctrdb")).unwrap();
    let probe = format!(
        "fpath=({} $fpath); autoload -Uz compinit; compinit -u -d {}/zcompdump; print -r -- ${{_comps[ctrdb]}}\n",
        dir.path().display(),
        dir.path().display()
    );
    let got = lines(&run(
        Command::new(&zsh).args(["-f", "-s"]),
        probe.as_bytes(),
    ));
    assert_eq!(got, ["_ctrdb"]);
}

#[test]
fn fish_completion_parses_and_completes_commands_and_options() {
    let Some(fish) = tool(&test_name(), "fish") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let s = script("fish", dir.path());
    let o = Command::new(&fish)
        .arg("--no-execute")
        .arg(&s)
        .output()
        .unwrap();
    assert!(
        o.status.success() && o.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let probe = format!(
        "source {}; complete -C 'ctrdb ch'; complete -C 'ctrdb dedup --pol'; complete -C 'ctrdb dedup --policy '",
        s.display()
    );
    let o = Command::new(&fish)
        .args(["--no-config", "-c", &probe])
        .env("HOME", dir.path())
        .output()
        .unwrap();
    let got = lines(&o);
    let words: Vec<&str> = got
        .iter()
        .map(|l| l.split('\t').next().unwrap_or(""))
        .collect();
    for want in ["check", "--policy", "safe", "tagged", "one-per-digest"] {
        assert!(words.contains(&want), "{want} not in {got:?}");
    }
}

fn man_page() -> Vec<u8> {
    let o = ctrdb(&["man"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        o.stdout.is_ascii(),
        "non-ASCII characters are groff escapes"
    );
    o.stdout
}

#[test]
fn man_page_renders_with_man_and_groff_without_warnings() {
    let page = man_page();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ctrdb.1");
    std::fs::write(&file, &page).unwrap();
    if let Some(groff) = tool(&test_name(), "groff") {
        let o = Command::new(groff)
            .args(["-man", "-ww", "-z"])
            .arg(&file)
            .output()
            .unwrap();
        assert!(
            o.status.success() && o.stderr.is_empty(),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    let Some(man) = tool(&test_name(), "man") else {
        return;
    };
    let o = Command::new(man)
        .args(["--warnings", "-l"])
        .arg(&file)
        .env("MANWIDTH", "100")
        .env("MANPAGER", "cat")
        .env("LC_ALL", "C.UTF-8")
        .output()
        .unwrap();
    assert!(
        o.status.success() && o.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.starts_with("CTRDB(1)"), "{text}");
    for section in [
        "NAME",
        "SYNOPSIS",
        "COMMANDS",
        "CTRDB CHECK",
        "CTRDB DUMP",
        "CTRDB INSPECT",
        "CTRDB IMAGES",
        "CTRDB REFS",
        "CTRDB COMPACT",
        "CTRDB DEDUP",
        "CTRDB COMPLETIONS",
        "CTRDB MAN",
        "EXIT STATUS",
        "FILES",
        "ENVIRONMENT",
    ] {
        assert!(
            text.lines().any(|l| l == section),
            "no section {section}:\n{text}"
        );
    }
    // each command's options are on the page, with their values
    for option in [
        "--policy <POLICY>",
        "--fail-on <SEVERITY>",
        "--in-place",
        "--collapse",
    ] {
        assert!(text.contains(option), "{option} missing:\n{text}");
    }
    // the arrow of `refs`' help survives the escape
    assert!(text.contains("digest → references"), "{text}");
}

#[test]
fn completions_and_man_keep_the_exit_status_on_a_closed_pipe() {
    for args in [&["man"][..], &["completions", "bash"]] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ctrdb"))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let o = child.wait_with_output().unwrap();
        assert_eq!(
            o.status.code(),
            Some(0),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert_no_panic(&o, "closed pipe");
    }
}
