//! The dedup planner on hand-built records: each policy rule removes exactly what
//! `docs/dedup.md` says, and each protection keeps a name the policy would remove
//! and is named in `protectedBy`. Scope is one namespace and one target digest.

use std::collections::BTreeMap;

use ctrdb::analysis::dedup::{
    plan, Action, Decision, Glob, Plan, PlanOptions, Policy, Protection, Reason,
};
use ctrdb::analysis::refs::RefClass;
use ctrdb::bytes::Bytes;
use ctrdb::containerd::model::{Blob, Container, Image, Labels, Lease, Namespace, Target};
use ctrdb::containerd::MetaDb;

const T: &str = "sha256:6a48f8bd607915a989b6f3b2f396dbd2820afd030db9428b39e11b889b520cc7";
const U: &str = "sha256:15d9a3c3641074bf61fb2dd759785e3a002cbed4bb193932708e81fe08a6e198";
const ID: &str = "sha256:4414f0e148944d1f62dbbc0872e5d7f3cf073514891ffc9d0e285acb5e3cc14c";
const MANAGED: (&str, &str) = ("io.cri-containerd.image", "managed");
const PINNED: (&str, &str) = ("io.cri-containerd.pinned", "pinned");

/// Test records borrow `'static` bytes: each string is leaked (tests only).
fn b(s: &str) -> Bytes<'static> {
    Bytes(Box::leak(s.as_bytes().to_vec().into_boxed_slice()))
}

fn labels(l: &[(&str, &str)]) -> Labels<'static> {
    l.iter().map(|(k, v)| (b(k), b(v))).collect()
}

fn img(name: &str, target: &str, l: &[(&str, &str)]) -> Image<'static> {
    Image {
        name: b(name),
        target: Some(Target {
            digest: b(target),
            media_type: b("application/vnd.oci.image.manifest.v1+json"),
            size: 555,
        }),
        target_valid: true,
        labels: labels(l),
        annotations: Labels::new(),
        created_at: None,
        updated_at: None,
    }
}

fn ns(name: &str, mut images: Vec<Image<'static>>) -> Namespace<'static> {
    images.sort_by(|a, b| a.name.cmp(&b.name));
    let blobs = [T, U]
        .iter()
        .map(|d| Blob {
            digest: b(d),
            size: Some(1),
            labels: Labels::new(),
            created_at: None,
            updated_at: None,
        })
        .collect();
    Namespace {
        name: b(name),
        in_v1: true,
        images,
        blobs,
        ..Namespace::default()
    }
}

fn db(namespaces: Vec<Namespace<'static>>) -> MetaDb<'static> {
    MetaDb {
        schema_version: Some(4),
        top_level: vec![b("v1")],
        namespaces,
        findings: Vec::new(),
        kind: Default::default(),
    }
}

fn opts(policy: Policy) -> PlanOptions {
    PlanOptions {
        policy,
        keep: Vec::new(),
        namespaces: Vec::new(),
    }
}

fn run(d: &MetaDb<'static>, o: &PlanOptions) -> Plan<'static> {
    let p = plan(d, o);
    assert_eq!(
        p.decisions.len(),
        d.namespaces.iter().map(|n| n.images.len()).sum::<usize>(),
        "one decision per record"
    );
    p
}

fn get<'a>(p: &'a Plan<'static>, ns: &str, name: &str) -> &'a Decision<'static> {
    p.decisions
        .iter()
        .find(|d| d.namespace.0 == ns.as_bytes() && d.name.0 == name.as_bytes())
        .unwrap_or_else(|| panic!("no decision for {ns}/{name}"))
}

fn removed(p: &Plan<'static>) -> Vec<String> {
    let mut v: Vec<String> = p
        .removed()
        .into_iter()
        .map(|(_, n)| String::from_utf8(n.0.to_vec()).unwrap())
        .collect();
    v.sort();
    v
}

fn sorted(v: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = v.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

fn repo_digest(repo: &str, d: &str) -> String {
    format!("{repo}@{d}")
}

// ------------------------------------------------------------------ safe (a)

#[test]
fn safe_removes_non_canonical_aliases_of_the_canonical_name() {
    let d = db(vec![ns(
        "default",
        vec![
            img("nginx", T, &[]),
            img("nginx:latest", T, &[]),
            img("docker.io/nginx:latest", T, &[]),
            img("index.docker.io/library/nginx:latest", T, &[]),
            img("docker.io/library/nginx:latest", T, &[]),
            img("docker.io/library/nginx:1.0", T, &[]), // another reference: stays
            img("nginx:1.0", U, &[]),                   // another target: not an alias
        ],
    )]);
    let p = run(&d, &opts(Policy::Safe));
    assert_eq!(
        removed(&p),
        sorted(&[
            "nginx",
            "nginx:latest",
            "docker.io/nginx:latest",
            "index.docker.io/library/nginx:latest"
        ])
    );
    for n in ["nginx", "nginx:latest", "docker.io/nginx:latest"] {
        let x = get(&p, "default", n);
        assert_eq!(x.reason, Reason::NonCanonicalAlias);
        assert!(
            x.detail.contains("docker.io/library/nginx:latest"),
            "{}",
            x.detail
        );
    }
    assert_eq!(
        get(&p, "default", "docker.io/library/nginx:latest").action,
        Action::Keep
    );
    assert_eq!(
        get(&p, "default", "docker.io/library/nginx:1.0").reason,
        Reason::NotRedundant
    );
    assert_eq!(get(&p, "default", "nginx:1.0").action, Action::Keep);
}

#[test]
fn safe_without_canonical_keeps_the_most_qualified() {
    let d = db(vec![ns(
        "default",
        vec![
            img("nginx", T, &[]),
            img("library/nginx:latest", T, &[]),
            img("docker.io/nginx:latest", T, &[]),
        ],
    )]);
    let p = run(&d, &opts(Policy::Safe));
    assert_eq!(removed(&p), sorted(&["nginx", "library/nginx:latest"]));
    assert_eq!(
        get(&p, "default", "docker.io/nginx:latest").action,
        Action::Keep
    );
}

#[test]
fn aliases_only_within_the_same_normalized_reference() {
    let rd = repo_digest("docker.io/library/app", T);
    let short_rd = repo_digest("app", T);
    let d = db(vec![ns(
        "default",
        vec![
            img("docker.io/library/app:1.0", T, &[]),
            img(&rd, T, &[]),
            img(&short_rd, T, &[]), // alias of the canonical repo@digest, not of the tag
            img("Upper/Case:1.0", T, &[]), // not a valid reference: never an alias
            img("import-2024-01-01@x", T, &[]),
        ],
    )]);
    let p = run(&d, &opts(Policy::Safe));
    assert_eq!(removed(&p), vec![short_rd.clone()]);
    assert!(get(&p, "default", &short_rd).detail.contains(&rd));
    assert_eq!(
        get(&p, "default", "Upper/Case:1.0").class,
        RefClass::Invalid
    );
    assert_eq!(get(&p, "default", "Upper/Case:1.0").action, Action::Keep);
}

// ------------------------------------------------------------------ safe (b)

#[test]
fn safe_removes_cri_image_id_beside_repo_digest() {
    let rd = repo_digest("127.0.0.1:5000/library/app", T);
    let d = db(vec![ns(
        "k8s.io",
        vec![
            img("127.0.0.1:5000/library/app:1.0", T, &[MANAGED]),
            img(&rd, T, &[MANAGED]),
            img(ID, T, &[MANAGED]),
        ],
    )]);
    let p = run(&d, &opts(Policy::Safe));
    assert_eq!(removed(&p), vec![ID.to_string()]);
    let x = get(&p, "k8s.io", ID);
    assert_eq!(
        (x.reason, x.class),
        (Reason::CriImageIdAlias, RefClass::ImageId)
    );
    assert!(x.detail.contains(&rd));
}

#[test]
fn safe_keeps_image_id_without_anchor_or_with_other_labels() {
    let other = "sha256:0000000000000000000000000000000000000000000000000000000000000000";
    // only a tag: no repo@digest anchor
    let a = db(vec![ns(
        "k8s.io",
        vec![
            img("registry.k8s.io/pause:3.6", T, &[MANAGED]),
            img(ID, T, &[MANAGED]),
        ],
    )]);
    assert!(run(&a, &opts(Policy::Safe)).removed().is_empty());
    // a repo@digest whose digest is not the target is no anchor
    let bad = repo_digest("docker.io/library/app", other);
    let c = db(vec![ns(
        "k8s.io",
        vec![img(&bad, T, &[MANAGED]), img(ID, T, &[MANAGED])],
    )]);
    assert!(run(&c, &opts(Policy::Safe)).removed().is_empty());
    // labels other than CRI's (or none)
    let rd = repo_digest("docker.io/library/app", T);
    for l in [
        &[MANAGED, ("foo", "bar")][..],
        &[][..],
        &[("io.cri-containerd.image", "other")][..],
    ] {
        let e = db(vec![ns(
            "k8s.io",
            vec![img(&rd, T, &[MANAGED]), img(ID, T, l)],
        )]);
        let p = run(&e, &opts(Policy::Safe));
        assert!(p.removed().is_empty(), "labels {l:?}");
        assert_eq!(get(&p, "k8s.io", ID).reason, Reason::NotRedundant);
    }
}

#[test]
fn pinned_image_id_goes_only_when_a_kept_sibling_is_pinned() {
    let rd = repo_digest("registry.k8s.io/pause", T);
    let with_pinned = db(vec![ns(
        "k8s.io",
        vec![
            img(&rd, T, &[MANAGED, PINNED]),
            img(ID, T, &[MANAGED, PINNED]),
        ],
    )]);
    assert_eq!(
        removed(&run(&with_pinned, &opts(Policy::Safe))),
        vec![ID.to_string()]
    );
    let unpinned_sibling = db(vec![ns(
        "k8s.io",
        vec![img(&rd, T, &[MANAGED]), img(ID, T, &[MANAGED, PINNED])],
    )]);
    let p = run(&unpinned_sibling, &opts(Policy::Safe));
    assert!(p.removed().is_empty());
    let x = get(&p, "k8s.io", ID);
    assert_eq!(
        (x.reason, x.protected_by.clone()),
        (Reason::Protected, vec![Protection::Pinned])
    );
}

// ------------------------------------------------------------------ tagged

#[test]
fn tagged_removes_untagged_names_of_targets_with_a_tag() {
    let rd = repo_digest("docker.io/library/app", T);
    let rd_u = repo_digest("docker.io/library/multi", U);
    let id_u = "sha256:a878cfebdc48c7eb701b1e4a4acdc71a8dcfc4f15f50964d1e26e57d00ef80e1";
    let d = db(vec![ns(
        "k8s.io",
        vec![
            img("docker.io/library/app:1.0", T, &[MANAGED]),
            img(&rd, T, &[MANAGED]),
            img(ID, T, &[]),           // no CRI labels: tagged removes it anyway
            img(&rd_u, U, &[MANAGED]), // no tag for U: all stay
            img(id_u, U, &[MANAGED]),
            img(&format!("moby-dangling@{T}"), T, &[]), // Docker's: never untagged-removed
        ],
    )]);
    let p = run(&d, &opts(Policy::Tagged));
    // tagged is safe plus: U's CRI ID alias goes beside its repo@digest anchor
    assert_eq!(removed(&p), sorted(&[&rd, ID, id_u]));
    assert_eq!(get(&p, "k8s.io", id_u).reason, Reason::CriImageIdAlias);
    assert_eq!(get(&p, "k8s.io", &rd).reason, Reason::UntaggedWithTag);
    assert!(
        p.warnings.iter().any(|w| w.contains("re-pull")),
        "{:?}",
        p.warnings
    );
    // under safe, U's ID alias goes (anchor rd_u), T's unlabelled ID does not
    assert_eq!(
        removed(&run(&d, &opts(Policy::Safe))),
        vec![id_u.to_string()]
    );
}

#[test]
fn fixpoint_keeps_the_best_ranked_of_mutually_protecting_names() {
    // Both untagged names are pinned, the tag is not: one of them must stay pinned,
    // and it is the better-ranked one (repo@digest before the image ID).
    let rd = repo_digest("docker.io/library/app", T);
    let d = db(vec![ns(
        "k8s.io",
        vec![
            img("docker.io/library/app:1.0", T, &[MANAGED]),
            img(&rd, T, &[MANAGED, PINNED]),
            img(ID, T, &[MANAGED, PINNED]),
        ],
    )]);
    let p = run(&d, &opts(Policy::Tagged));
    assert_eq!(removed(&p), vec![ID.to_string()]);
    assert_eq!(
        get(&p, "k8s.io", &rd).protected_by,
        vec![Protection::Pinned]
    );
}

// ------------------------------------------------------------------ one-per-digest

#[test]
fn one_per_digest_keeps_the_preferred_name() {
    let rd = repo_digest("docker.io/library/app", T);
    let names = [
        "docker.io/library/app:1.0",
        "app:1.0",
        "docker.io/library/app:latest",
        &rd,
        ID,
        "weird name",
    ];
    let mk = |extra: &[(&str, &[(&str, &str)])]| {
        let mut v: Vec<Image<'static>> = names.iter().map(|n| img(n, T, &[])).collect();
        for (n, l) in extra {
            v.retain(|i| i.name.0 != n.as_bytes());
            v.push(img(n, T, l));
        }
        db(vec![ns("default", v)])
    };
    let kept = |p: &Plan| -> Vec<String> {
        p.decisions
            .iter()
            .filter(|d| d.action == Action::Keep)
            .map(|d| String::from_utf8(d.name.0.to_vec()).unwrap())
            .collect()
    };
    // canonical tag first (then the shortest), before repo@digest, ID, other
    let p = run(&mk(&[]), &opts(Policy::OnePerDigest));
    assert_eq!(kept(&p), vec!["docker.io/library/app:1.0"]);
    // every removal names its rule: safe's aliases first, then "not preferred"
    assert_eq!(
        get(&p, "default", "app:1.0").reason,
        Reason::NonCanonicalAlias
    );
    assert_eq!(get(&p, "default", ID).reason, Reason::NotPreferred);
    assert_eq!(
        get(&p, "default", "weird name").reason,
        Reason::NotPreferred
    );
    assert!(p.warnings.iter().any(|w| w.contains("tag name")));
    // pinned beats a tag
    let p = run(&mk(&[(&rd, &[PINNED])]), &opts(Policy::OnePerDigest));
    assert_eq!(kept(&p), vec![rd.clone()]);
    // a name used by a container beats everything (and is protected anyway)
    let mut d = mk(&[(&rd, &[PINNED])]);
    d.namespaces[0]
        .containers
        .push(container("c1", "weird name"));
    let p = run(&d, &opts(Policy::OnePerDigest));
    // ... and the pinned name stays too: no kept sibling is pinned
    assert_eq!(kept(&p), vec!["weird name".to_string(), rd.clone()]);
    assert_eq!(
        get(&p, "default", &rd).protected_by,
        vec![Protection::Pinned]
    );
    // only IDs and others: the ID
    let d = db(vec![ns(
        "default",
        vec![
            img(ID, T, &[]),
            img("weird name", T, &[]),
            img("zzz other", T, &[]),
        ],
    )]);
    assert_eq!(
        kept(&run(&d, &opts(Policy::OnePerDigest))),
        vec![ID.to_string()]
    );
}

// ------------------------------------------------------------------ protections

fn container(id: &str, image: &str) -> Container<'static> {
    Container {
        id: b(id),
        image: Some(b(image)),
        snapshotter: None,
        snapshot_key: None,
        sandbox_id: None,
        runtime: None,
        spec: None,
        extensions: BTreeMap::new(),
        labels: Labels::new(),
        created_at: None,
        updated_at: None,
    }
}

/// A canonical name and its short alias `app:1.0`, which `safe` removes.
fn alias_pair(alias_labels: &[(&str, &str)], canonical_labels: &[(&str, &str)]) -> MetaDb<'static> {
    db(vec![ns(
        "default",
        vec![
            img("docker.io/library/app:1.0", T, canonical_labels),
            img("app:1.0", T, alias_labels),
        ],
    )])
}

fn protected_by(p: &Plan<'static>, name: &str) -> Vec<Protection> {
    let x = get(p, "default", name);
    assert_eq!(x.action, Action::Keep, "{name}");
    assert_eq!(x.reason, Reason::Protected, "{name}: {}", x.detail);
    x.protected_by.clone()
}

#[test]
fn baseline_alias_is_removed() {
    assert_eq!(
        removed(&run(&alias_pair(&[], &[]), &opts(Policy::Safe))),
        vec!["app:1.0"]
    );
}

#[test]
fn protection_used_by_container() {
    let mut d = alias_pair(&[], &[]);
    d.namespaces[0].containers.push(container("ctr", "app:1.0"));
    assert_eq!(
        protected_by(&run(&d, &opts(Policy::Safe)), "app:1.0"),
        vec![Protection::UsedByContainer]
    );
}

#[test]
fn protection_leased_image() {
    let mut d = alias_pair(&[], &[]);
    d.namespaces[0].leases.push(Lease {
        id: b("l1"),
        created_at: None,
        labels: Labels::new(),
        content: vec![],
        snapshots: vec![],
        ingests: vec![],
        images: vec![b("app:1.0")],
    });
    assert_eq!(
        protected_by(&run(&d, &opts(Policy::Safe)), "app:1.0"),
        vec![Protection::Leased]
    );
}

#[test]
fn protection_named_by_gc_image_label() {
    for key in [
        "containerd.io/gc.ref.image",
        "containerd.io/gc.ref.image.extra",
        "containerd.io/gc.bref.image",
    ] {
        let mut d = alias_pair(&[], &[]);
        d.namespaces[0].blobs[0].labels = labels(&[(key, "app:1.0")]);
        assert_eq!(
            protected_by(&run(&d, &opts(Policy::Safe)), "app:1.0"),
            vec![Protection::NamedByGcLabel],
            "{key}"
        );
    }
}

#[test]
fn protection_own_gc_labels() {
    let gc = ("containerd.io/gc.ref.content.x", U);
    let p = run(&alias_pair(&[gc], &[]), &opts(Policy::Safe));
    assert_eq!(protected_by(&p, "app:1.0"), vec![Protection::GcLabels]);
    // the same label on the kept sibling: nothing is lost
    assert_eq!(
        removed(&run(&alias_pair(&[gc], &[gc]), &opts(Policy::Safe))),
        vec!["app:1.0"]
    );
    // 2.x expiry: the only non-expiring name stays
    let exp = ("containerd.io/gc.expire", "2000-01-01T00:00:00Z");
    let p = run(&alias_pair(&[], &[exp]), &opts(Policy::Safe));
    assert_eq!(protected_by(&p, "app:1.0"), vec![Protection::GcLabels]);
}

#[test]
fn protection_pinned_without_pinned_sibling() {
    let p = run(&alias_pair(&[PINNED], &[]), &opts(Policy::Safe));
    assert_eq!(protected_by(&p, "app:1.0"), vec![Protection::Pinned]);
    assert_eq!(
        removed(&run(&alias_pair(&[PINNED], &[PINNED]), &opts(Policy::Safe))),
        vec!["app:1.0"]
    );
}

#[test]
fn protection_keep_glob_matches_name_or_normalized() {
    for g in ["app:*", "docker.io/library/app:?.?", "*"] {
        let o = PlanOptions {
            policy: Policy::Safe,
            keep: vec![Glob::new(g)],
            namespaces: vec![],
        };
        assert_eq!(
            protected_by(&run(&alias_pair(&[], &[]), &o), "app:1.0"),
            vec![Protection::KeepGlob],
            "{g}"
        );
    }
    let o = PlanOptions {
        policy: Policy::Safe,
        keep: vec![Glob::new("nginx*")],
        namespaces: vec![],
    };
    assert_eq!(removed(&run(&alias_pair(&[], &[]), &o)), vec!["app:1.0"]);
}

#[test]
fn protection_outside_namespace_filter() {
    let o = PlanOptions {
        policy: Policy::Safe,
        keep: vec![],
        namespaces: vec![b"k8s.io".to_vec()],
    };
    let p = run(&alias_pair(&[], &[]), &o);
    assert_eq!(
        protected_by(&p, "app:1.0"),
        vec![Protection::OutsideNamespace]
    );
    let o = PlanOptions {
        policy: Policy::Safe,
        keep: vec![],
        namespaces: vec![b"x".to_vec(), b"default".to_vec()],
    };
    assert_eq!(removed(&run(&alias_pair(&[], &[]), &o)), vec!["app:1.0"]);
}

#[test]
fn several_protections_are_all_named() {
    let mut d = alias_pair(&[PINNED], &[]);
    d.namespaces[0].containers.push(container("ctr", "app:1.0"));
    let o = PlanOptions {
        policy: Policy::Safe,
        keep: vec![Glob::new("app*")],
        namespaces: vec![],
    };
    assert_eq!(
        protected_by(&run(&d, &o), "app:1.0"),
        vec![
            Protection::UsedByContainer,
            Protection::Pinned,
            Protection::KeepGlob
        ]
    );
}

// ------------------------------------------------------------------ scope

#[test]
fn never_across_namespaces_and_single_names_stay() {
    let d = db(vec![
        ns("a", vec![img("docker.io/library/app:1.0", T, &[])]),
        ns("b", vec![img("app:1.0", T, &[])]),
    ]);
    for policy in [Policy::Safe, Policy::Tagged, Policy::OnePerDigest] {
        let p = run(&d, &opts(policy));
        assert!(p.removed().is_empty(), "{policy:?}");
        assert_eq!(p.shared.len(), 1, "shared digest reported");
    }
}

#[test]
fn record_without_target_is_kept_untouched() {
    let mut broken = img("docker.io/library/app:1.0", T, &[]);
    broken.target = None;
    let d = db(vec![ns("default", vec![broken, img("app:1.0", T, &[])])]);
    let p = run(&d, &opts(Policy::OnePerDigest));
    assert_eq!(
        get(&p, "default", "docker.io/library/app:1.0").reason,
        Reason::NoTarget
    );
    assert!(
        p.removed().is_empty(),
        "the alias is the last name of its target"
    );
}

#[test]
fn counts_per_namespace() {
    let d = db(vec![ns(
        "default",
        vec![
            img("docker.io/library/app:1.0", T, &[]),
            img("app:1.0", T, &[]),
            img("docker.io/app:1.0", T, &[PINNED]),
        ],
    )]);
    let p = run(&d, &opts(Policy::Safe));
    let s = &p.namespaces[0];
    assert_eq!((s.names, s.kept, s.removed, s.protected), (3, 2, 1, 1));
}

#[test]
fn glob_matching() {
    let m = |g: &str, n: &str| Glob::new(g).matches(n.as_bytes());
    assert!(m("*", ""));
    assert!(m("a*c", "abbbc") && m("a*c", "ac") && !m("a*c", "acb"));
    assert!(m("?", "x") && !m("?", "") && !m("?", "xy"));
    assert!(m("docker.io/*:1.*", "docker.io/library/app:1.0"));
    assert!(m("*@sha256:*", "repo@sha256:abc") && !m("*@sha256:*", "repo:1"));
    assert!(m("a**b", "ab") && m("*a*a*a*", "aaa") && !m("*a*a*a*", "aa"));
    assert!(!m("abc", "abcd") && !m("abcd", "abc"));
}
