//! Versions, supplied versions, `next_version` and version filters.
//!
//! Inputs are mostly well-formed version texts (numbers up to `u64::MAX`, pre-release and
//! build identifiers from a small vocabulary) with raw strings mixed in.
//! Checks: no panic; a parsed version prints back to its input and re-parses to itself;
//! `cmp_precedence`/`Ord` are reflexive, antisymmetric and transitive on the samples and `Ord`
//! agrees with `Eq`; `SuppliedVersion` agrees with `Version::parse`; `next_version` never hands
//! out an existing version and its result has the shape the version type asks for; a filter
//! naming a version (`v`, `~v`, `^v`, `MAJOR`, `MAJOR.MINOR`, `MAJOR.*`, `MAJOR.MINOR.*`) matches
//! that version.
#![no_main]

use std::cmp::Ordering;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use registry_core::semver::SuppliedVersion;
use registry_core::{next_version, Version, VersionFilter, VersionRequest, VersionType};

#[derive(Arbitrary, Debug)]
enum Num {
    Small(u8),
    Any(u64),
    Max,
    Text(String),
}

impl Num {
    fn render(&self) -> String {
        match self {
            Num::Small(n) => (n % 12).to_string(),
            Num::Any(n) => n.to_string(),
            Num::Max => u64::MAX.to_string(),
            Num::Text(s) => s.clone(),
        }
    }
}

const TAGS: &[&str] = &[
    "rc", "alpha", "beta", "build", "dev", "x-y", "-", "a1b", "0",
];

#[derive(Arbitrary, Debug)]
enum Ident {
    Tag(u8),
    Num(Num),
    Text(String),
}

impl Ident {
    fn render(&self) -> String {
        match self {
            Ident::Tag(t) => TAGS[*t as usize % TAGS.len()].to_string(),
            Ident::Num(n) => n.render(),
            Ident::Text(s) => s.clone(),
        }
    }
}

fn dotted(idents: &[Ident]) -> String {
    idents
        .iter()
        .map(Ident::render)
        .collect::<Vec<_>>()
        .join(".")
}

#[derive(Arbitrary, Debug)]
enum VText {
    Raw(String),
    Full {
        major: Num,
        minor: Num,
        patch: Num,
        pre: Option<Vec<Ident>>,
        build: Option<Vec<Ident>>,
    },
    Partial {
        major: Num,
        minor: Option<Num>,
    },
}

impl VText {
    fn render(&self) -> String {
        match self {
            VText::Raw(s) => s.clone(),
            VText::Full {
                major,
                minor,
                patch,
                pre,
                build,
            } => {
                let mut s = format!("{}.{}.{}", major.render(), minor.render(), patch.render());
                if let Some(pre) = pre {
                    s.push('-');
                    s.push_str(&dotted(pre));
                }
                if let Some(build) = build {
                    s.push('+');
                    s.push_str(&dotted(build));
                }
                s
            }
            VText::Partial { major, minor } => match minor {
                Some(minor) => format!("{}.{}", major.render(), minor.render()),
                None => major.render(),
            },
        }
    }
}

#[derive(Arbitrary, Debug)]
enum Tag {
    Default,
    Known(u8),
    Raw(String),
}

impl Tag {
    fn render(&self) -> String {
        match self {
            Tag::Default => String::new(),
            Tag::Known(t) => TAGS[*t as usize % TAGS.len()].to_string(),
            Tag::Raw(s) => s.clone(),
        }
    }
}

#[derive(Arbitrary, Debug)]
enum FilterText {
    Raw(String),
    /// `""`, `~` or `^` before a version text, `.*` optionally after it.
    Built {
        op: u8,
        version: VText,
        star: bool,
    },
}

#[derive(Arbitrary, Debug)]
struct Input {
    samples: Vec<VText>,
    existing: Vec<VText>,
    version_type: u8,
    supplied: Option<VText>,
    pre_tag: Tag,
    build_tag: Tag,
    filter: FilterText,
}

fn check_order(vs: &[Version]) {
    for a in vs {
        assert_eq!(a.cmp_precedence(a), Ordering::Equal);
        for b in vs {
            let ab = a.cmp_precedence(b);
            assert_eq!(ab, b.cmp_precedence(a).reverse(), "{a} vs {b}");
            assert_eq!(a.cmp(b), b.cmp(a).reverse(), "{a} vs {b}");
            assert_eq!(a.cmp(b) == Ordering::Equal, a == b, "{a} vs {b}");
            if ab != Ordering::Equal {
                assert_eq!(a.cmp(b), ab, "Ord refines precedence: {a} vs {b}");
            }
            for c in vs {
                let bc = b.cmp_precedence(c);
                if ab == bc || bc == Ordering::Equal {
                    assert_eq!(a.cmp_precedence(c), ab, "{a} {b} {c}");
                } else if ab == Ordering::Equal {
                    assert_eq!(a.cmp_precedence(c), bc, "{a} {b} {c}");
                }
                if a.cmp(b) != Ordering::Greater && b.cmp(c) != Ordering::Greater {
                    assert_ne!(a.cmp(c), Ordering::Greater, "{a} {b} {c}");
                }
            }
        }
    }
}

fn check_filters_match(v: &Version) {
    let (ma, mi) = (v.major(), v.minor());
    let texts = [
        v.to_string(),
        format!("~{v}"),
        format!("^{v}"),
        format!("{ma}"),
        format!("{ma}.{mi}"),
        format!("{ma}.*"),
        format!("{ma}.{mi}.*"),
        format!("~{ma}"),
        format!("~{ma}.{mi}"),
    ];
    // `^1.2` means `>=1.2.0`, which leaves out `1.2.0-rc.1`.
    let release_only = [format!("^{ma}.{mi}"), format!("^{ma}")];
    let extra = if v.pre().is_none() {
        &release_only[..]
    } else {
        &[]
    };
    for text in texts.iter().chain(extra) {
        let f = VersionFilter::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert!(f.matches(v), "filter {text} does not match {v}");
    }
}

fn check_text(text: &str) -> Option<Version> {
    let supplied = SuppliedVersion::parse(text);
    let parsed = Version::parse(text);
    match &parsed {
        Ok(v) => {
            assert_eq!(v.to_string(), text);
            assert_eq!(Version::parse(&v.to_string()).as_ref(), Ok(v));
            assert_eq!(supplied, Ok(SuppliedVersion::Full(v.clone())));
            check_filters_match(v);
        }
        Err(_) => {
            if let Ok(s) = &supplied {
                let SuppliedVersion::Partial { .. } = s else {
                    panic!("{text:?}: SuppliedVersion::Full but Version::parse fails");
                };
                assert_eq!(s.valid_version(), text);
                assert_eq!(SuppliedVersion::parse(&s.valid_version()).as_ref(), Ok(s));
                let base = s.base_version().to_string();
                assert_eq!(Version::parse(&base).map(|v| v.to_string()), Ok(base));
            }
        }
    }
    parsed.ok()
}

fuzz_target!(|input: Input| {
    let mut versions = Vec::new();
    for t in input.samples.iter().take(8) {
        versions.extend(check_text(&t.render()));
    }

    let existing: Vec<String> = input.existing.iter().take(24).map(VText::render).collect();
    for e in &existing {
        versions.extend(check_text(e));
    }
    versions.truncate(12);
    check_order(&versions);

    let version_type = VersionType::ALL[input.version_type as usize % 6];
    let request = VersionRequest {
        version_type,
        version: input.supplied.as_ref().map(VText::render),
        pre_tag: input.pre_tag.render(),
        build_tag: input.build_tag.render(),
    };
    if let Ok(next) = next_version(&existing, &request) {
        let text = next.to_string();
        assert!(
            !existing.contains(&text),
            "next_version handed out existing {text} for {request:?}"
        );
        assert_eq!(Version::parse(&text).as_ref(), Ok(&next));
        match version_type {
            VersionType::Major | VersionType::Minor | VersionType::Patch => {
                assert!(next.pre().is_none() && next.build().is_none(), "{text}")
            }
            VersionType::Pre => assert!(next.pre().is_some() && next.build().is_none(), "{text}"),
            VersionType::Build => assert!(next.build().is_some(), "{text}"),
            VersionType::PreBuild => {
                assert!(next.pre().is_some() && next.build().is_some(), "{text}")
            }
        }
    }

    let filter_text = match &input.filter {
        FilterText::Raw(s) => s.clone(),
        FilterText::Built { op, version, star } => {
            let op = ["", "~", "^"][*op as usize % 3];
            let star = if *star { ".*" } else { "" };
            format!("{op}{}{star}", version.render())
        }
    };
    if let Ok(filter) = VersionFilter::parse(&filter_text) {
        for v in &versions {
            let _ = filter.matches(v);
        }
    }
});
