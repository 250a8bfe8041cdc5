//! The dedup planner: which image names are redundant under a policy, and which
//! of them must stay anyway. A pure function of the decoded records and the
//! options ([`plan`]); no I/O. The rules and their upstream reasons are in
//! `docs/dedup.md`; the GC impact of a plan is checked by the caller with
//! [`crate::analysis::gc`].
//!
//! Scope is one namespace and one target digest (a *group*): a name is only ever
//! redundant next to another name of the same group that stays. In each group the
//! planner removes names one at a time, worst-ranked first, each only if a policy
//! rule holds and no protection applies **with respect to the names that stay**;
//! then it re-checks every removal against the final set and puts back (best-ranked
//! first, for good) any whose reason or safety no longer holds, and repeats until
//! nothing changes. Every rule only gets easier to satisfy when more names stay,
//! so putting a name back never invalidates another removal, and the loop ends
//! (each name is removed or put back at most once).

use std::collections::BTreeSet;

use rayon::prelude::*;

use crate::analysis::refs::{self, DigestGroup, NameRef, RefClass, SharedDigest};
use crate::bytes::display;
use crate::bytes::Bytes;
use crate::containerd::labels as keys;
use crate::containerd::model::{Labels, Namespace};
use crate::containerd::reference::{parse_docker_ref, Reference};
use crate::containerd::MetaDb;

pub mod glob;

pub use glob::Glob;

/// Which names count as redundant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// Non-canonical aliases and CRI image-ID aliases beside a `repo@digest`.
    Safe,
    /// `safe`, plus untagged names (`repo@digest`, `sha256:<id>`) of a target that keeps a tag.
    Tagged,
    /// One name per target (containers', pinned, tags, `repo@digest`, ID, other).
    OnePerDigest,
}

impl Policy {
    /// The wire / command-line name.
    pub fn name(self) -> &'static str {
        match self {
            Policy::Safe => "safe",
            Policy::Tagged => "tagged",
            Policy::OnePerDigest => "one-per-digest",
        }
    }

    /// Whether writing a plan of this policy needs `--yes` (it drops tags).
    pub fn needs_confirmation(self) -> bool {
        self == Policy::OnePerDigest
    }
}

/// The planner's inputs besides the records.
#[derive(Debug, Clone)]
pub struct PlanOptions {
    /// The policy.
    pub policy: Policy,
    /// `--keep` patterns: a name matching one (as stored or normalized) stays.
    pub keep: Vec<Glob>,
    /// `-n` namespaces; empty = all. Names elsewhere stay.
    pub namespaces: Vec<Vec<u8>>,
}

/// What happens to a name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// The record stays.
    Keep,
    /// The record's bucket is deleted.
    Remove,
}

impl Action {
    /// The wire name.
    pub fn name(self) -> &'static str {
        match self {
            Action::Keep => "keep",
            Action::Remove => "remove",
        }
    }
}

/// Why.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Reason {
    /// Removed: same normalized reference as a more qualified kept name (safe (a)).
    NonCanonicalAlias,
    /// Removed: CRI's `sha256:<id>` alias beside a kept `repo@<target>` (safe (b)).
    CriImageIdAlias,
    /// Removed: untagged name of a target that keeps a tag (`tagged`).
    UntaggedWithTag,
    /// Removed: a better-ranked name of the target stays (`one-per-digest`).
    NotPreferred,
    /// Kept: the policy does not find it redundant.
    NotRedundant,
    /// Kept: the policy would remove it, a protection keeps it (`protectedBy`).
    Protected,
    /// Kept: the record has no target digest (malformed; never touched).
    NoTarget,
}

impl Reason {
    /// The wire name.
    pub fn name(self) -> &'static str {
        match self {
            Reason::NonCanonicalAlias => "nonCanonicalAlias",
            Reason::CriImageIdAlias => "criImageIdAlias",
            Reason::UntaggedWithTag => "untaggedWithTag",
            Reason::NotPreferred => "notPreferred",
            Reason::NotRedundant => "notRedundant",
            Reason::Protected => "protected",
            Reason::NoTarget => "noTarget",
        }
    }
}

/// A rule that keeps a name no policy may remove.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Protection {
    /// It would be the last name of its target in its namespace.
    LastName,
    /// A container's `image` field names it.
    UsedByContainer,
    /// A 2.x lease holds it as an image resource.
    Leased,
    /// A `containerd.io/gc.ref.image*` / `gc.bref.image*` label names it.
    NamedByGcLabel,
    /// It is pinned and no kept sibling is.
    Pinned,
    /// It has `containerd.io/gc.*` labels no kept sibling has (or no expiry while every kept sibling expires).
    GcLabels,
    /// A `--keep` pattern matches it.
    KeepGlob,
    /// Its namespace is not among `-n`.
    OutsideNamespace,
}

impl Protection {
    /// The wire name.
    pub fn name(self) -> &'static str {
        match self {
            Protection::LastName => "lastName",
            Protection::UsedByContainer => "usedByContainer",
            Protection::Leased => "leased",
            Protection::NamedByGcLabel => "namedByGcLabel",
            Protection::Pinned => "pinned",
            Protection::GcLabels => "gcLabels",
            Protection::KeepGlob => "keepGlob",
            Protection::OutsideNamespace => "outsideNamespace",
        }
    }
}

/// The decision for one image record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision<'a> {
    /// The namespace.
    pub namespace: Bytes<'a>,
    /// The record name.
    pub name: Bytes<'a>,
    /// The target (`null` for a record without a target digest).
    pub target: Option<TargetRef<'a>>,
    /// The name's class.
    pub class: RefClass,
    /// Keep or remove.
    pub action: Action,
    /// Why.
    pub reason: Reason,
    /// For a kept name the policy would remove: the protections that keep it.
    pub protected_by: Vec<Protection>,
    /// A sentence for people: the sibling it is an alias of, which protection, ...
    pub detail: String,
}

impl Decision<'_> {
    /// Kept because a protection applies.
    pub fn is_protected(&self) -> bool {
        self.reason == Reason::Protected
    }
}

/// The target of a decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetRef<'a> {
    /// The target digest.
    pub digest: Bytes<'a>,
}

/// Counts for one namespace.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NamespaceSummary<'a> {
    /// The namespace.
    pub namespace: Bytes<'a>,
    /// Image records.
    pub names: usize,
    /// Records kept.
    pub kept: usize,
    /// Records removed.
    pub removed: usize,
    /// Kept records the policy would have removed.
    pub protected: usize,
}

/// The plan for the whole database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan<'a> {
    /// The policy used.
    pub policy: Policy,
    /// One per image record: namespaces in name order, then target digest, then
    /// the name's rank (the name a group would keep last comes first).
    pub decisions: Vec<Decision<'a>>,
    /// Digests targeted in more than one namespace (reported, never deduplicated).
    pub shared: Vec<SharedDigest<'a>>,
    /// Per-namespace counts, namespaces in name order.
    pub namespaces: Vec<NamespaceSummary<'a>>,
    /// Things the user must know before writing (e.g. digest-pinned pods).
    pub warnings: Vec<String>,
}

impl<'a> Plan<'a> {
    /// `(namespace, name)` of every removed record.
    pub fn removed(&self) -> BTreeSet<(Bytes<'a>, Bytes<'a>)> {
        self.decisions
            .iter()
            .filter(|d| d.action == Action::Remove)
            .map(|d| (d.namespace, d.name))
            .collect()
    }

    /// Number of removed records.
    pub fn removed_count(&self) -> usize {
        self.decisions
            .iter()
            .filter(|d| d.action == Action::Remove)
            .count()
    }

    /// The removed tags that no other name of their target replaces: the
    /// names pods and clients may still pull by (what `--yes` confirms).
    pub fn dropped_tags(&self) -> impl Iterator<Item = &Decision<'a>> {
        self.decisions.iter().filter(|d| is_dropped_tag(d))
    }

    /// Number of protected records.
    pub fn protected_count(&self) -> usize {
        self.decisions.iter().filter(|d| d.is_protected()).count()
    }
}

/// Plans the removal of redundant names of `db` under `opts`.
pub fn plan<'a>(db: &MetaDb<'a>, opts: &PlanOptions) -> Plan<'a> {
    // Namespaces are independent: planned in parallel, concatenated in order.
    let per_ns: Vec<NamespacePlan<'a>> = db
        .namespaces
        .par_iter()
        .filter(|n| n.in_v1)
        .map(|ns| plan_namespace(ns, opts))
        .collect();
    assemble(per_ns, opts)
}

/// One namespace's part of a plan (see [`plan_namespace`]).
#[derive(Debug, Clone)]
pub struct NamespacePlan<'a> {
    /// The namespace's digest groups.
    pub groups: Vec<DigestGroup<'a>>,
    /// One decision per image record of the namespace.
    pub decisions: Vec<Decision<'a>>,
    /// Its counts.
    pub summary: NamespaceSummary<'a>,
}

impl<'a> NamespacePlan<'a> {
    /// The names this part removes.
    pub fn removed_names(&self) -> impl Iterator<Item = &'a [u8]> + '_ {
        self.decisions
            .iter()
            .filter(|d| d.action == Action::Remove)
            .map(|d| d.name.0)
    }
}

/// The whole plan from every v1 namespace's part, given in namespace order:
/// exactly what [`plan`] returns for the same parts.
pub fn assemble<'a>(per_ns: Vec<NamespacePlan<'a>>, opts: &PlanOptions) -> Plan<'a> {
    let shared = refs::shared_digests(per_ns.iter().flat_map(|p| &p.groups));
    let mut decisions = Vec::new();
    let mut namespaces = Vec::new();
    for p in per_ns {
        decisions.extend(p.decisions);
        namespaces.push(p.summary);
    }
    let mut warnings = Vec::new();
    let repo_digests_removed = decisions
        .iter()
        .filter(|d| d.action == Action::Remove && d.class == RefClass::RepoDigest)
        .count();
    if repo_digests_removed > 0 {
        warnings.push(format!(
            "{repo_digests_removed} repo@digest name(s) would be removed: pods that reference an image by digest \
             no longer find it and need a re-pull (which fails on air-gapped nodes or with imagePullPolicy: Never)"
        ));
    }
    let tags_removed = decisions.iter().filter(|d| is_dropped_tag(d)).count();
    if tags_removed > 0 {
        warnings.push(format!(
            "{tags_removed} tag name(s) would be removed: pods and clients that use those tags need a re-pull"
        ));
    }
    Plan {
        policy: opts.policy,
        decisions,
        shared,
        namespaces,
        warnings,
    }
}

/// A removed tag that is not an alias of a kept name (see [`Plan::dropped_tags`]).
fn is_dropped_tag(d: &Decision<'_>) -> bool {
    d.action == Action::Remove && d.class == RefClass::Tag && d.reason == Reason::NotPreferred
}

/// One namespace's digest groups, decisions and summary. Depends on nothing
/// outside `ns` (names, references and protections never cross namespaces).
pub fn plan_namespace<'a>(ns: &Namespace<'a>, opts: &PlanOptions) -> NamespacePlan<'a> {
    let in_scope =
        opts.namespaces.is_empty() || opts.namespaces.iter().any(|n| n.as_slice() == ns.name.0);
    let mut decisions = Vec::new();
    let groups = refs::namespace_groups(ns);
    for g in &groups {
        plan_group(ns, g.digest, &g.names, in_scope, opts, &mut decisions);
    }
    // Records without a target digest are in no group; they are never touched.
    for img in ns.images.iter().filter(|i| i.target_digest().is_none()) {
        decisions.push(Decision {
            namespace: ns.name,
            name: img.name,
            target: None,
            class: refs::classify(img.name.0, None).class,
            action: Action::Keep,
            reason: Reason::NoTarget,
            protected_by: Vec::new(),
            detail: "the record has no target digest; ctrdb check reports it".into(),
        });
    }
    let summary = NamespaceSummary {
        namespace: ns.name,
        names: decisions.len(),
        kept: decisions
            .iter()
            .filter(|d| d.action == Action::Keep)
            .count(),
        removed: decisions
            .iter()
            .filter(|d| d.action == Action::Remove)
            .count(),
        protected: decisions.iter().filter(|d| d.is_protected()).count(),
    };
    NamespacePlan {
        groups,
        decisions,
        summary,
    }
}

/// One name of a group with everything the rules look at.
struct Member<'r, 'a> {
    n: &'r NameRef<'a>,
    labels: Option<&'r Labels<'a>>,
    /// `ParseDockerRef` of the name, for valid references (not IDs, not `moby-dangling@`).
    reference: Option<Reference>,
    canonical: bool,
    /// Higher = more qualified (only compared between names with the same reference).
    qualification: (
        bool,
        bool,
        bool,
        bool,
        std::cmp::Reverse<usize>,
        std::cmp::Reverse<&'a [u8]>,
    ),
    /// Lower = better (the order `one-per-digest` keeps in).
    rank: (bool, bool, u8, bool, usize, &'a [u8]),
    statics: Vec<Protection>,
    expires: bool,
}

fn member<'r, 'a>(
    ns: &'r Namespace<'a>,
    n: &'r NameRef<'a>,
    in_scope: bool,
    opts: &PlanOptions,
) -> Member<'r, 'a> {
    let text = std::str::from_utf8(n.name.0).ok();
    let aliasable = matches!(
        n.class,
        RefClass::Tag | RefClass::RepoDigest | RefClass::Other
    );
    let reference = if aliasable {
        text.and_then(|t| parse_docker_ref(t).ok())
    } else {
        None
    };
    let canonical = match (&reference, text) {
        (Some(r), Some(t)) => r.to_string() == t,
        _ => false,
    };
    let qualification = match (&reference, text) {
        (Some(r), Some(t)) => {
            let (explicit_domain, rest) = match t.split_once('/') {
                Some((d, rest)) if d.contains(['.', ':']) || d == "localhost" => (true, rest),
                _ => (false, t),
            };
            let explicit_path = rest
                .strip_prefix(r.path.as_str())
                .is_some_and(|after| after.is_empty() || after.starts_with([':', '@']));
            let last = rest.rsplit('/').next().unwrap_or(rest);
            let explicit_tag = last.contains([':', '@']);
            (
                canonical,
                explicit_domain,
                explicit_path,
                explicit_tag,
                std::cmp::Reverse(t.len()),
                std::cmp::Reverse(n.name.0),
            )
        }
        _ => (
            false,
            false,
            false,
            false,
            std::cmp::Reverse(0),
            std::cmp::Reverse(n.name.0),
        ),
    };
    let class_rank = match n.class {
        RefClass::Tag => 0,
        RefClass::RepoDigest => 1,
        RefClass::ImageId => 2,
        _ => 3,
    };
    let rank = (
        n.used_by_containers.is_empty(),
        !n.pinned,
        class_rank,
        !canonical,
        if matches!(n.class, RefClass::Tag | RefClass::RepoDigest) {
            n.name.0.len()
        } else {
            0
        },
        n.name.0,
    );
    let mut statics = Vec::new();
    if !n.used_by_containers.is_empty() {
        statics.push(Protection::UsedByContainer);
    }
    if !n.leased_by.is_empty() {
        statics.push(Protection::Leased);
    }
    if !n.named_by_labels.is_empty() {
        statics.push(Protection::NamedByGcLabel);
    }
    let normalized = n.normalized.as_deref().map(str::as_bytes);
    if opts
        .keep
        .iter()
        .any(|g| g.matches(n.name.0) || normalized.is_some_and(|s| g.matches(s)))
    {
        statics.push(Protection::KeepGlob);
    }
    if !in_scope {
        statics.push(Protection::OutsideNamespace);
    }
    let labels = ns.image(n.name.0).map(|i| &i.labels);
    let expires = labels.is_some_and(|l| l.contains_key(keys::GC_EXPIRE));
    Member {
        n,
        labels,
        reference,
        canonical,
        qualification,
        rank,
        statics,
        expires,
    }
}

/// Labels are exactly CRI's: `io.cri-containerd.image=managed`, optionally `io.cri-containerd.pinned=pinned`.
fn only_cri_labels(l: &Labels<'_>) -> bool {
    let managed = l.get(keys::CRI_MANAGED).is_some_and(|v| v.0 == b"managed");
    managed
        && l.iter().all(|(k, v)| {
            (k.0 == keys::CRI_MANAGED && v.0 == b"managed")
                || (k.0 == keys::CRI_PINNED && v.0 == b"pinned")
        })
}

/// The policy rule that makes member `i` redundant given the kept set (`kept[i]`
/// is false while this is asked), with the sibling it relies on.
fn redundant(
    m: &[Member<'_, '_>],
    i: usize,
    kept: &[bool],
    policy: Policy,
) -> Option<(Reason, String)> {
    let me = m.get(i)?;
    let siblings = || {
        m.iter()
            .enumerate()
            .filter(move |(j, _)| *j != i && kept.get(*j).copied().unwrap_or(false))
    };
    // safe (a): a kept, more qualified name with the same normalized reference.
    if let Some(r) = &me.reference {
        let best = siblings()
            .filter(|(_, s)| s.reference.as_ref() == Some(r) && s.qualification > me.qualification)
            .max_by(|(_, a), (_, b)| a.qualification.cmp(&b.qualification));
        if let Some((_, s)) = best {
            let what = if s.canonical {
                "the canonical name"
            } else {
                "the more qualified name"
            };
            return Some((
                Reason::NonCanonicalAlias,
                format!("alias of {what} {}", display(s.n.name.0)),
            ));
        }
    }
    // safe (b): CRI's image-ID alias beside a kept repo@<target>.
    if me.n.class == RefClass::ImageId && me.labels.is_some_and(only_cri_labels) {
        let anchor = siblings().find(|(_, s)| {
            s.n.class == RefClass::RepoDigest && s.n.digest_matches_target == Some(true)
        });
        if let Some((_, s)) = anchor {
            return Some((
                Reason::CriImageIdAlias,
                format!(
                    "CRI image-ID alias; the tag-independent anchor {} stays",
                    display(s.n.name.0)
                ),
            ));
        }
    }
    if policy == Policy::Tagged && matches!(me.n.class, RefClass::RepoDigest | RefClass::ImageId) {
        if let Some((_, s)) = siblings()
            .filter(|(_, s)| s.n.class == RefClass::Tag)
            .min_by(|(_, a), (_, b)| a.rank.cmp(&b.rank))
        {
            return Some((
                Reason::UntaggedWithTag,
                format!("untagged; the tag {} stays", display(s.n.name.0)),
            ));
        }
    }
    if policy == Policy::OnePerDigest {
        if let Some((_, s)) = siblings()
            .filter(|(_, s)| s.rank < me.rank)
            .min_by(|(_, a), (_, b)| a.rank.cmp(&b.rank))
        {
            return Some((
                Reason::NotPreferred,
                format!("{} is preferred and stays", display(s.n.name.0)),
            ));
        }
    }
    None
}

/// The protections of member `i` given the kept set (`kept[i]` false while asked).
fn protections(m: &[Member<'_, '_>], i: usize, kept: &[bool]) -> Vec<Protection> {
    let Some(me) = m.get(i) else {
        return Vec::new();
    };
    let kept_siblings: Vec<&Member<'_, '_>> = m
        .iter()
        .enumerate()
        .filter(|(j, _)| *j != i && kept.get(*j).copied().unwrap_or(false))
        .map(|(_, s)| s)
        .collect();
    let mut p = me.statics.clone();
    if kept_siblings.is_empty() {
        p.push(Protection::LastName);
    }
    if me.n.pinned && !kept_siblings.iter().any(|s| s.n.pinned) {
        p.push(Protection::Pinned);
    }
    let gc_uncovered = me.n.gc_labels.iter().any(|(k, v)| {
        !kept_siblings
            .iter()
            .any(|s| s.n.gc_labels.get(k.0) == Some(*v))
    });
    let loses_non_expiring =
        !me.expires && !kept_siblings.is_empty() && kept_siblings.iter().all(|s| s.expires);
    if gc_uncovered || loses_non_expiring {
        p.push(Protection::GcLabels);
    }
    p.sort();
    p
}

fn removable(m: &[Member<'_, '_>], i: usize, kept: &[bool], policy: Policy) -> bool {
    redundant(m, i, kept, policy).is_some() && protections(m, i, kept).is_empty()
}

fn plan_group<'a>(
    ns: &Namespace<'a>,
    digest: Bytes<'a>,
    names: &[NameRef<'a>],
    in_scope: bool,
    opts: &PlanOptions,
    out: &mut Vec<Decision<'a>>,
) {
    let m: Vec<Member<'_, 'a>> = names
        .iter()
        .map(|n| member(ns, n, in_scope, opts))
        .collect();
    let mut order: Vec<usize> = (0..m.len()).collect();
    order.sort_by(|&a, &b| m.get(a).map(|x| &x.rank).cmp(&m.get(b).map(|x| &x.rank)));
    let mut kept = vec![true; m.len()];
    let mut settled = vec![false; m.len()];
    loop {
        let mut changed = false;
        // Remove, worst-ranked first, whatever is removable against what stays.
        for &i in order.iter().rev() {
            if kept.get(i) == Some(&true) && settled.get(i) == Some(&false) {
                if let Some(k) = kept.get_mut(i) {
                    *k = false;
                }
                if removable(&m, i, &kept, opts.policy) {
                    changed = true;
                } else if let Some(k) = kept.get_mut(i) {
                    *k = true;
                }
            }
        }
        // Re-check every removal against the final set; put back, best-ranked
        // first and for good, any that no longer holds.
        while let Some(&i) = order
            .iter()
            .find(|&&i| kept.get(i) == Some(&false) && !removable(&m, i, &kept, opts.policy))
        {
            if let Some(k) = kept.get_mut(i) {
                *k = true;
            }
            if let Some(s) = settled.get_mut(i) {
                *s = true;
            }
            changed = true;
        }
        if !changed {
            break;
        }
    }
    for &i in &order {
        let (Some(me), Some(&is_kept)) = (m.get(i), kept.get(i)) else {
            continue;
        };
        // Asked as if this name went, against everything else that stays.
        let mut others = kept.clone();
        if let Some(k) = others.get_mut(i) {
            *k = false;
        }
        let (action, reason, protected_by, detail) =
            match (is_kept, redundant(&m, i, &others, opts.policy)) {
                (false, Some((r, d))) => (Action::Remove, r, Vec::new(), d),
                (false, None) => (
                    Action::Remove,
                    Reason::NotPreferred,
                    Vec::new(),
                    String::new(),
                ), // unreachable by construction
                (true, Some((r, d))) => {
                    let p = protections(&m, i, &others);
                    let names: Vec<&str> = p.iter().map(|x| x.name()).collect();
                    if p.is_empty() {
                        // Removable alone, but not together with the names removed beside it.
                        let d = format!(
                            "kept so that the names removed beside it stay redundant ({d})"
                        );
                        (Action::Keep, Reason::NotRedundant, p, d)
                    } else {
                        let d = format!("{} ({d}) but protected: {}", r.name(), names.join(", "));
                        (Action::Keep, Reason::Protected, p, d)
                    }
                }
                (true, None) => (
                    Action::Keep,
                    Reason::NotRedundant,
                    Vec::new(),
                    keep_detail(me, opts.policy),
                ),
            };
        out.push(Decision {
            namespace: ns.name,
            name: me.n.name,
            target: Some(TargetRef { digest }),
            class: me.n.class,
            action,
            reason,
            protected_by,
            detail,
        });
    }
}

fn keep_detail(me: &Member<'_, '_>, policy: Policy) -> String {
    match (me.n.class, policy) {
        (_, Policy::OnePerDigest) => "the preferred name of its target".into(),
        (RefClass::Tag, _) if me.canonical => "canonical tag".into(),
        (RefClass::Tag, _) => "tag".into(),
        (RefClass::RepoDigest, _) => "repo@digest: digest-pinned pods resolve it".into(),
        (RefClass::ImageId, _) => {
            "image ID without a repo@digest anchor, or with labels other than CRI's".into()
        }
        (RefClass::MobyDangling, _) => "Docker's keep-alive record".into(),
        (RefClass::Invalid, _) => "not a valid reference: never an alias".into(),
        (RefClass::Other, _) => "no more qualified name with the same reference".into(),
    }
}
